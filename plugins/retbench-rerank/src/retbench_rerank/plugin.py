"""Registers the ``cross-encoder`` reranker."""

from __future__ import annotations

from retbench import Register, hookimpl
from retbench_rerank.cross_encoder import CrossEncoderReranker


@hookimpl
def retbench_register_rerankers(register: Register) -> None:
    register(CrossEncoderReranker)
