"""retbench: a plugin-based benchmark harness for retrieval and retrieval-augmented QA.

Quick start for plugin authors -- a package with an entry point in the ``retbench`` group::

    # pyproject.toml
    [project.entry-points.retbench]
    my_plugin = "my_package.plugin"

    # my_package/plugin.py
    import retbench

    class MyRetriever(retbench.Component):
        name = "mine"
        version = "1"

        def __init__(self, depth: int = 10):
            self.depth = depth

        def index(self, corpus, *, workdir): ...
        def search(self, queries, *, k): ...

    @retbench.hookimpl
    def retbench_register_retrievers(register):
        register(MyRetriever)

Then ``retbench list`` shows it and ``retbench run --retriever mine --dataset sample`` runs it.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("retbench")

from retbench.attribution import attributed  # noqa: E402
from retbench.cache import atomic_write_json, stage_key  # noqa: E402
from retbench.component import Component, component_identity, params_of  # noqa: E402
from retbench.config import RunConfig  # noqa: E402
from retbench.errors import ConfigError, DataFormatError, RetbenchError  # noqa: E402
from retbench.factory import ComponentFactory, component_factory  # noqa: E402
from retbench.hookspecs import Register  # noqa: E402
from retbench.pipeline import evaluate  # noqa: E402
from retbench.plugins import get_plugin_manager  # noqa: E402
from retbench.progress import track  # noqa: E402
from retbench.record import run_record_path  # noqa: E402
from retbench.results import checked_negatives  # noqa: E402
from retbench.types import (  # noqa: E402
    Answer,
    Corpus,
    DatasetSplit,
    EvalRules,
    Injection,
    LoraWeights,
    Passage,
    Qrels,
    Queries,
    Run,
    RunRecord,
)

__all__ = [
    "Answer",
    "Component",
    "ComponentFactory",
    "ConfigError",
    "Corpus",
    "DataFormatError",
    "DatasetSplit",
    "EvalRules",
    "Injection",
    "LoraWeights",
    "Passage",
    "Qrels",
    "Queries",
    "Register",
    "Run",
    "RunConfig",
    "RunRecord",
    "RetbenchError",
    "atomic_write_json",
    "attributed",
    "checked_negatives",
    "component_factory",
    "component_identity",
    "evaluate",
    "get_plugin_manager",
    "has_answer",
    "hookimpl",
    "params_of",
    "run_record_path",
    "stage_key",
    "track",
]


def __getattr__(name: str):
    """``has_answer`` (DPR's answer matching) loads on first use: it imports ``regex``, which
    plugin discovery and cached runs need not pay for."""
    if name == "has_answer":
        from retbench.metrics.qa import has_answer

        return has_answer
    raise AttributeError(f"module 'retbench' has no attribute {name!r}")
