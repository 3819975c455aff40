"""Corpus embeddings on disk: one ``.npy`` file per shard of rows, memory-mapped on read.

A shard file appears atomically once its rows are encoded, so a killed encode restarts at the
first missing shard. With several devices, Ray actors take the shards round-robin (parallel.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from retbench import Corpus, Passage, track

if TYPE_CHECKING:  # numpy loads when embeddings are written or read, not at plugin discovery
    import numpy as np

STORAGE_DTYPES = ("float32", "float16")


class EmbeddingStore:
    def __init__(self, folder: Path, *, rows: int, shard_size: int) -> None:
        self.folder = folder
        self.rows = rows
        self.shard_size = shard_size

    @property
    def shards(self) -> int:
        return max(1, -(-self.rows // self.shard_size))

    def path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:06d}.npy"

    def bounds(self, shard: int) -> tuple[int, int]:
        start = shard * self.shard_size
        return start, min(self.rows, start + self.shard_size)

    def missing(self) -> list[int]:
        return [s for s in range(self.shards) if not self.path(s).is_file()]

    def write(self, shard: int, vectors: np.ndarray, dtype: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{self.path(shard).name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as handle:
            import numpy as np

            np.save(handle, vectors.astype(dtype, copy=False))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path(shard))

    def read(self, shard: int) -> np.ndarray:
        import numpy as np

        return np.load(self.path(shard), mmap_mode="r")

    def rows_at(self, rows: np.ndarray) -> np.ndarray:
        """float32 vectors of the given row numbers (any order, repeats allowed)."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        out = None
        for shard in np.unique(rows // self.shard_size):
            picked = np.flatnonzero(rows // self.shard_size == shard)
            vectors = np.asarray(self.read(int(shard))[rows[picked] - shard * self.shard_size], dtype=np.float32)
            if out is None:
                out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        return out if out is not None else np.empty((0, 0), dtype=np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        for shard in range(self.shards):
            yield self.read(shard)


def encode_shards(
    encode: Callable[[list[Passage]], np.ndarray],
    corpus: Corpus,
    store: EmbeddingStore,
    shards: list[int],
    *,
    dtype: str,
    description: str = "encoding",
) -> None:
    for shard in track(shards, description=description):
        start, stop = store.bounds(shard)
        store.write(shard, encode(corpus.slice(start, stop)), dtype)
