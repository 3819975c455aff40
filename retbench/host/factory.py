"""Components built by name for other components: a hybrid's members, the retriever an
augmenter labels its synthetic queries with, SyNeg's retrieved-negatives sampler.

A component that needs others defines ``set_component_factory(factory)``; the run hands it a
:class:`ComponentFactory` over the run's own registries (so a test's fresh plugin manager is
the one used, and no component builds a plugin manager of its own). Code outside a run makes
one with :func:`component_factory`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from retbench.component import build

if TYPE_CHECKING:
    from retbench.host.manager import RetbenchPluginManager
    from retbench.host.registry import Registries


class ComponentFactory:
    """``factory(kind, name, params)``: a registered component, built and validated.
    ``kind`` is a registry name (``retrievers``, ``negative_samplers``, ...)."""

    def __init__(self, registries: Registries) -> None:
        self.registries = registries

    def __call__(self, kind: str, name: str, params: dict[str, Any] | None = None) -> Any:
        instance = build(self.registries[kind].entry(name).cls, dict(params or {}), kind=kind[:-1])
        validate = getattr(instance, "validate", None)
        if callable(validate):
            validate()
        hand_component_factory([instance], self)
        return instance


def component_factory(pm: RetbenchPluginManager | None = None) -> ComponentFactory:
    """A factory over ``pm``'s registries (the installed plugins when None)."""
    from retbench.host.manager import get_plugin_manager
    from retbench.host.registry import collect_registries

    return ComponentFactory(collect_registries(pm or get_plugin_manager()))


def hand_component_factory(components: Iterable[Any], factory: ComponentFactory) -> None:
    for component in components:
        if component is not None and callable(getattr(component, "set_component_factory", None)):
            component.set_component_factory(factory)
