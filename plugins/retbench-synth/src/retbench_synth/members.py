"""Components built by name from the installed plugins: the members of a hybrid, the
retriever an augmenter labels its synthetic queries with, SyNeg's retrieved-
negatives sampler."""

from __future__ import annotations

from typing import Any

from retbench.component import build


def build_component(kind: str, name: str, params: dict[str, Any] | None = None) -> Any:
    """``kind`` is a registry name (``retrievers``, ``generators``, ``negative_samplers``, ...)."""
    from retbench.plugins import get_plugin_manager
    from retbench.registry import collect_registries

    return build(collect_registries(get_plugin_manager())[kind].entry(name).cls, dict(params or {}), kind=kind[:-1])


def build_retriever(name: str, params: dict[str, Any] | None = None) -> Any:
    return build_component("retrievers", name, params)
