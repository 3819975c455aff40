"""Bytes per vector of the faiss index types the dense retrievers build (issue 20,
docs/scale.md): ``--vectors`` random unit vectors of ``--dim`` dimensions indexed with each
factory string: the serialized index's fixed part (trained, empty: IVF centroids, PQ codebooks),
its size per added vector, and both extrapolated to DPR's 21,015,324 Wikipedia passages.

    .venv/bin/python benchmarks/index_bytes.py [--vectors 100000] [--dim 768]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

WIKIPEDIA = 21_015_324
FACTORIES = ("Flat", "HNSW32", "IVF1024,PQ32", "IVF1024,PQ64", "IVF1024,SQ8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    args = parser.parse_args()
    import faiss
    from rich.console import Console
    from rich.table import Table

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.vectors, args.dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = Table(title=f"faiss index size, {args.vectors:,} x {args.dim}-d float32 vectors (inner product)")
    for column in ("factory", "train + add s", "fixed MB", "bytes / vector", f"at {WIKIPEDIA:,} passages"):
        table.add_column(column, justify="right")
    for factory in FACTORIES:
        index = faiss.index_factory(args.dim, factory, faiss.METRIC_INNER_PRODUCT)
        start = time.perf_counter()
        if not index.is_trained:
            index.train(vectors)
        fixed = faiss.serialize_index(index).size
        index.add(vectors)
        seconds = time.perf_counter() - start
        per_vector = (faiss.serialize_index(index).size - fixed) / args.vectors
        table.add_row(factory, f"{seconds:.1f}", f"{fixed / 2**20:.1f}", f"{per_vector:,.1f}",
                      f"{(fixed + per_vector * WIKIPEDIA) / 1e9:,.2f} GB")
    Console().print(table)


if __name__ == "__main__":
    main()
