"""Corpus encoding on several workers: one Ray actor per entry of ``devices``, shards
round-robin.

Each actor rebuilds the retriever from its parameters (and trained model folder, if any) and
holds the model while it encodes its shards. A memory-mapped corpus reaches the actors as its
Arrow file's path (each maps the same file), so no table is copied; shards are the same files a
single-process encode writes, so a killed encode resumes like a single-process one. Without a
Ray instance to join, a local one is started on 127.0.0.1 for the encode.
"""

from __future__ import annotations

import resource
import time
from typing import Any

from retbench import Corpus, ray_cluster
from retbench_dense.embeddings import EmbeddingStore, encode_shards


class ShardEncoder:
    """A Ray actor holding one copy of the encoder."""

    def __init__(self, cls: type, params: dict[str, Any], model_dir: Any, device: str) -> None:
        self.retriever = cls(**{**params, "device": device, "devices": None})
        self.retriever.model_dir_ = model_dir

    def encode(self, corpus: Corpus, store: EmbeddingStore, shards: list[int]) -> dict[str, Any]:
        """Encode ``shards``; report how many, the seconds and this worker's peak RSS."""
        start = time.perf_counter()
        encode_shards(self.retriever.encode_passages, corpus, store, shards, dtype=self.retriever.embedding_dtype)
        rows = sum(stop - begin for begin, stop in map(store.bounds, shards))
        return {"shards": len(shards), "rows": rows, "seconds": round(time.perf_counter() - start, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def actor_options(device: str) -> dict[str, Any]:
    """One CPU for a ``cpu`` worker (Ray then gives its torch one thread); one GPU, which Ray
    picks and exposes as ``cuda:0``, for a ``cuda`` / ``cuda:N`` worker."""
    return {"num_cpus": 0, "num_gpus": 1} if device.startswith("cuda") else {"num_cpus": 1}


def encode_on_devices(retriever: Any, corpus: Corpus, store: EmbeddingStore, shards: list[int], *,
                      devices: list[str]) -> list[dict[str, Any]]:
    """Encode the missing ``shards``; each worker's report (device, rows, seconds, peak RSS)."""
    with ray_cluster(num_cpus=sum(1 for d in devices if not d.startswith("cuda")) or None) as ray:
        actor = ray.remote(ShardEncoder)
        workers = [actor.options(**actor_options(device)).remote(
            type(retriever), retriever.get_params(), getattr(retriever, "model_dir_", None),
            "cuda:0" if device.startswith("cuda") else device) for device in devices]
        jobs = [(device, worker.encode.remote(corpus, store, shards[rank::len(devices)]))
                for rank, (device, worker) in enumerate(zip(devices, workers)) if shards[rank::len(devices)]]
        failed, reports = [], []
        for device, job in jobs:
            try:
                reports.append({"device": device, **ray.get(job)})
            except Exception as exc:  # noqa: BLE001 - reported below, with the finished shards kept
                failed.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        for worker in workers:
            ray.kill(worker)
    if failed:
        raise RuntimeError(f"{len(failed)} encoding worker(s) failed ({failed[0]}); "
                           "finished shards are kept, run again to resume")
    return reports
