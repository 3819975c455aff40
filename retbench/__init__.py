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
from retbench.engine.cache import atomic_write_bytes, atomic_write_json, canonical_json, default_home, stage_key  # noqa: E402
from retbench.engine.capabilities import LOGLIKELIHOOD, LORA, PREFIX  # noqa: E402
from retbench.component import Component, component_identity, constructor_parameters, params_of  # noqa: E402
from retbench.engine.config import RunConfig  # noqa: E402
from retbench.errors import ConfigError, DataFormatError, RetbenchError  # noqa: E402
from retbench.host.factory import ComponentFactory, component_factory  # noqa: E402
from retbench.host.hookspecs import Register  # noqa: E402
from retbench.interfaces import FitReport  # noqa: E402
from retbench.model_specs import (  # noqa: E402
    ModelRef,
    default_model,
    network_available,
    resolve_model,
    resolve_or_default,
    torch_device,
)
from retbench.engine.evaluate import evaluate  # noqa: E402
from retbench.engine.executors import ray_cluster  # noqa: E402
from retbench.host.manager import get_plugin_manager  # noqa: E402
from retbench.progress import note, track  # noqa: E402
from retbench.reporting.records import run_record_path  # noqa: E402
from retbench.engine.accepted import checked_negatives  # noqa: E402
from retbench.data.types import (  # noqa: E402
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
    "LOGLIKELIHOOD",
    "LORA",
    "PREFIX",
    "Answer",
    "Component",
    "ComponentFactory",
    "ConfigError",
    "Corpus",
    "DataFormatError",
    "DatasetSplit",
    "EvalRules",
    "FitReport",
    "Injection",
    "LoraWeights",
    "ModelRef",
    "Passage",
    "Qrels",
    "Queries",
    "Register",
    "Run",
    "RunConfig",
    "RunRecord",
    "RetbenchError",
    "atomic_write_bytes",
    "atomic_write_json",
    "attributed",
    "canonical_json",
    "checked_negatives",
    "component_factory",
    "component_identity",
    "constructor_parameters",
    "default_home",
    "default_model",
    "dpr_tokens",
    "evaluate",
    "get_plugin_manager",
    "has_answer",
    "hookimpl",
    "network_available",
    "normalize_answer",
    "note",
    "ray_cluster",
    "params_of",
    "resolve_model",
    "resolve_or_default",
    "run_record_path",
    "stage_key",
    "tokens_have_answer",
    "torch_device",
    "track",
]
LAZY = {"has_answer": "retbench.metrics.qa", "dpr_tokens": "retbench.metrics.qa",
        "tokens_have_answer": "retbench.metrics.qa",
        "normalize_answer": "retbench.metrics.answer"}


def __getattr__(name: str):
    """The answer-matching helpers (``has_answer``: DPR's answer matching, ``dpr_tokens``: its
    tokens, ``normalize_answer``: SQuAD's EM normalisation) load on first use: they import
    ``regex``, which plugin discovery and cached runs need not pay for."""
    if name in LAZY:
        import importlib

        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'retbench' has no attribute {name!r}")
