"""Entry point ``bm25`` in the ``retbench`` group."""

from __future__ import annotations

import retbench
from retbench_bm25.retriever import BM25


@retbench.hookimpl
def retbench_register_retrievers(register) -> None:  # type: ignore[no-untyped-def]
    register(BM25)
