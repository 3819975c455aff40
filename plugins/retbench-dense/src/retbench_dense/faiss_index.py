"""faiss indexes over an EmbeddingStore: any index factory string, inner-product metric.

``Flat`` (exact, the default), ``HNSW32``, ``IVF1024,PQ32`` ... Vectors are added one shard at
a time and queries searched in batches, so memory stays bounded by a shard and a batch.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from retbench import ConfigError
from retbench_dense.embeddings import EmbeddingStore

TRAIN_SAMPLE = 100_000


def prefix(vectors: np.ndarray, dim: int | None, *, normalize: bool) -> np.ndarray:
    """The first ``dim`` components of each vector (a Matryoshka prefix), re-normalised when the
    retriever searches normalised vectors; all of them when ``dim`` is None."""
    if dim is None or dim >= vectors.shape[1]:
        return vectors
    cut = np.ascontiguousarray(vectors[:, :dim], dtype=np.float32)
    if normalize:
        cut /= np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)
    return cut


def build_index(store: EmbeddingStore, *, dim: int, factory: str, search_params: str, seed: int = 0,
                normalize: bool = False) -> faiss.Index:
    """An index over the store's vectors, or over their first ``dim`` components when ``dim`` is
    below the stored width (normalised again if ``normalize``)."""
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"faiss index '{factory}': {exc}") from exc
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(store.rows, size=min(store.rows, TRAIN_SAMPLE), replace=False))
        sample = np.concatenate([_rows(store, rows, shard) for shard in range(store.shards)])
        index.train(np.ascontiguousarray(prefix(sample, dim, normalize=normalize), dtype=np.float32))
    for vectors in store:
        index.add(np.ascontiguousarray(prefix(vectors, dim, normalize=normalize), dtype=np.float32))
    apply_search_params(index, search_params)
    return index


def _rows(store: EmbeddingStore, rows: np.ndarray, shard: int) -> np.ndarray:
    start, stop = store.bounds(shard)
    chosen = rows[(rows >= start) & (rows < stop)] - start
    return np.asarray(store.read(shard)[chosen], dtype=np.float32)


def apply_search_params(index: faiss.Index, search_params: str) -> None:
    """``nprobe=32,efSearch=128``: faiss ParameterSpace syntax."""
    if search_params:
        try:
            faiss.ParameterSpace().set_index_parameters(index, search_params)
        except RuntimeError as exc:
            raise ConfigError(f"faiss search parameters '{search_params}': {exc}") from exc


def search(index: faiss.Index, queries: np.ndarray, *, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, index.ntotal)
    scores = np.empty((len(queries), k), dtype=np.float32)
    rows = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), batch_size):
        part = np.ascontiguousarray(queries[start : start + batch_size], dtype=np.float32)
        scores[start : start + len(part)], rows[start : start + len(part)] = index.search(part, k)
    return scores, rows


def save(index: faiss.Index, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def load(path: Path, *, search_params: str) -> faiss.Index:
    index = faiss.read_index(str(path))
    apply_search_params(index, search_params)
    return index
