"""Entry point ``retbench: dense``: the dense retrievers and the negative samplers."""

from __future__ import annotations

from retbench import Register, hookimpl
from retbench_dense.negatives import AnnNegatives, Bm25Hard, InBatch, RandomNegatives
from retbench_dense.retriever import ANCE, DPR, DRAMA


@hookimpl
def retbench_register_retrievers(register: Register) -> None:
    for cls in (DPR, ANCE, DRAMA):
        register(cls)


@hookimpl
def retbench_register_negative_samplers(register: Register) -> None:
    for cls in (InBatch, RandomNegatives, Bm25Hard, AnnNegatives):
        register(cls)
