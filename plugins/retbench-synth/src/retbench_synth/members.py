"""Components built by name for a synth component: the members of a hybrid, the retriever an
augmenter labels its synthetic queries with, SyNeg's retrieved-negatives sampler. They come
from the run's registries through the factory the run hands over (``set_component_factory``);
in code, hand one made with ``retbench.component_factory()``."""

from __future__ import annotations

from typing import Any

from retbench import ComponentFactory, ConfigError


class BuildsComponents:
    def set_component_factory(self, factory: ComponentFactory) -> None:
        self.factory_ = factory

    def build_component(self, kind: str, name: str, params: dict[str, Any] | None = None) -> Any:
        """``kind`` is a registry name (``retrievers``, ``negative_samplers``, ...)."""
        factory = getattr(self, "factory_", None)
        if factory is None:
            raise ConfigError(f"{getattr(self, 'name', type(self).__name__)}: builds '{name}' by name, but was given no "
                              "component factory (a run hands its own; in code call "
                              "set_component_factory(retbench.component_factory()))")
        return factory(kind, name, params)
