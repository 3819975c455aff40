"""Compare the bm25 retriever's backends on SciFact in one run: bm25s (default) against
Lucene through Pyserini, the reference implementation.

    .venv/bin/python benchmarks/bm25_backends.py [--data ../shared/data/scifact] [--repeats 5]

Both backends use the same parameters (k1=0.9, b=0.4, title+text) and search single-threaded
for k=100. Index seconds and queries/s are medians over the repeats (the first Lucene index
also starts the JVM, which is reported separately); nDCG@10 is scored with ir-measures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from retbench_bm25.retriever import BM25
from rich.console import Console
from rich.table import Table

from retbench.data.datasets.beir import load_beir_split
from retbench.metrics.retrieval import score_run

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
PUBLISHED = 0.6789  # Pyserini's BEIR SciFact BM25 flat nDCG@10


def measure(backend: str, split, repeats: int, k: int) -> dict[str, float]:
    index_seconds, qps = [], []
    run = {}
    first_index = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as workdir:
            retriever = BM25(backend=backend, threads=1)
            start = time.perf_counter()
            retriever.index(split.corpus, workdir=Path(workdir))
            elapsed = time.perf_counter() - start
            if first_index is None:
                first_index = elapsed
            else:
                index_seconds.append(elapsed)
            start = time.perf_counter()
            run = retriever.search(split.queries, k=k)
            qps.append(len(split.queries) / (time.perf_counter() - start))
    metrics, _ = score_run(["nDCG@10"], split.qrels, run, split.rules)
    return {
        "first_index_s": first_index,
        "index_s": statistics.median(index_seconds or [first_index]),
        "qps": statistics.median(qps),
        "ndcg10": metrics["nDCG@10"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as prepared:
        split = load_beir_split(args.data, "test", workdir=Path(prepared), name="scifact")
        results = {backend: measure(backend, split, args.repeats, args.k) for backend in ("bm25s", "lucene")}
    table = Table(title=f"bm25 backends on SciFact ({len(split.corpus)} docs, {len(split.queries)} queries, "
                        f"k={args.k}, 1 thread, medians of {args.repeats})")
    for column in ("backend", "first index s", "index s", "queries/s", "nDCG@10", "Δ published"):
        table.add_column(column, justify="right")
    for backend, r in results.items():
        table.add_row(backend, f"{r['first_index_s']:.2f}", f"{r['index_s']:.2f}", f"{r['qps']:,.0f}",
                      f"{r['ndcg10']:.4f}", f"{r['ndcg10'] - PUBLISHED:+.4f}")
    fast, ref = results["bm25s"], results["lucene"]
    table.add_row("ratio bm25s/lucene", f"{fast['first_index_s'] / ref['first_index_s']:.2f}",
                  f"{fast['index_s'] / ref['index_s']:.2f}", f"{fast['qps'] / ref['qps']:.1f}x",
                  f"{fast['ndcg10'] - ref['ndcg10']:+.4f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
