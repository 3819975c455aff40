"""Testing kit for plugin authors: mock components, contract checks, pytest fixtures."""

from __future__ import annotations

from retbench.host.manager import RetbenchPluginManager, get_plugin_manager
from retbench.testing.checks import (
    check_augmenter,
    check_dataset,
    check_generator,
    check_injector,
    check_metric,
    check_negative_sampler,
    check_reader,
    check_reranker,
    check_retriever,
    checks_for,
    parametrize_with_checks,
)
from retbench.testing.mocks import (
    CountingRetriever,
    EchoReader,
    MockDataset,
    MockPlugin,
    OracleRetriever,
    OverlapReranker,
    ReverseRetriever,
    mock_split,
)


def make_plugin_manager(*plugins: object, builtin: bool = True) -> RetbenchPluginManager:
    """A fresh manager without installed entry points: the core's own components (unless
    ``builtin=False``), the mocks, and ``plugins``."""
    import retbench.builtin

    pm = get_plugin_manager(load_entrypoints=False)
    if builtin:
        pm.register(retbench.builtin, name="core")
    pm.register(MockPlugin(), name="mocks")
    for index, plugin in enumerate(plugins):
        pm.register(plugin, name=f"test-plugin-{index}")
    return pm


__all__ = [
    "CountingRetriever",
    "EchoReader",
    "MockDataset",
    "MockPlugin",
    "OracleRetriever",
    "OverlapReranker",
    "ReverseRetriever",
    "check_augmenter",
    "check_dataset",
    "check_generator",
    "check_injector",
    "check_metric",
    "check_negative_sampler",
    "check_reader",
    "check_reranker",
    "check_retriever",
    "checks_for",
    "make_plugin_manager",
    "mock_split",
    "parametrize_with_checks",
]
