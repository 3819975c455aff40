"""Entry point ``retbench: synth``: the ``hybrid`` retriever."""

from __future__ import annotations

from retbench import hookimpl
from retbench.hookspecs import Register
from retbench_synth.hybrid import HybridRetriever


@hookimpl
def retbench_register_retrievers(register: Register) -> None:
    register(HybridRetriever)
