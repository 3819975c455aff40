"""Corpus encoding on several devices: one worker process per device, shards round-robin.

Each worker rebuilds the retriever from its parameters (and trained model folder, if any),
so nothing but plain data crosses the process boundary; finished shards are files, so a
killed multi-device encode resumes like a single-device one.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from retbench import Corpus
from retbench_dense.embeddings import EmbeddingStore, encode_shards


def _worker(cls: type, params: dict[str, Any], model_dir: Any, corpus: Corpus, store: EmbeddingStore,
            shards: list[int], device: str) -> None:
    retriever = cls(**{**params, "device": device, "devices": None})
    retriever.model_dir_ = model_dir
    encode_shards(retriever.encode_passages, corpus, store, shards, dtype=retriever.embedding_dtype)


def encode_on_devices(retriever: Any, corpus: Corpus, store: EmbeddingStore, shards: list[int], *,
                      devices: list[str]) -> None:
    context = multiprocessing.get_context("spawn")
    workers = []
    for rank, device in enumerate(devices):
        mine = shards[rank :: len(devices)]
        if mine:
            process = context.Process(target=_worker, args=(
                type(retriever), retriever.get_params(), getattr(retriever, "model_dir_", None), corpus, store,
                mine, device))
            process.start()
            workers.append(process)
    for process in workers:
        process.join()
    failed = [p.exitcode for p in workers if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} encoding worker(s) failed (exit codes {failed}); "
                           "finished shards are kept, run again to resume")
