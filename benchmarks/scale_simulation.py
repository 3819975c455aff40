"""A simulated large run (issue 20, docs/scale.md): ``--passages`` synthetic passages (default
1,000,000, 20-40 words each) written as BEIR corpus.jsonl, prepared into the memory-mapped Arrow corpus,
encoded by a tiny random BERT (2 layers, 32 wide) on 2 Ray actors of one CPU each, and indexed
with faiss (Flat). Prints each step's seconds and peak RSS: the driver's, and each worker's
(which holds one model and maps the corpus, so it is bounded by the model and one shard, not by
the corpus).

    .venv/bin/python benchmarks/scale_simulation.py [--passages 1000000] [--shard-size 50000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_corpus(path: Path, passages: int, seed: int = 0) -> None:
    from retbench.testing.tiny_models import _vocabulary

    words = _vocabulary()
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(passages):
            text = " ".join(rng.choices(words, k=rng.randint(20, 40)))
            handle.write(json.dumps({"_id": f"p{i}", "title": f"title {i % 1000}", "text": text}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--max-length", type=int, default=32, help="passage tokens (the model is not the point)")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    from retbench import ray_cluster
    from retbench.data.datasets.beir import load_corpus
    from retbench.testing.tiny_models import tiny_bert
    from retbench_dense.retriever import DPR

    work = args.workdir or Path(tempfile.mkdtemp(prefix="scale-simulation-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    start = time.perf_counter()
    write_corpus(work / "corpus.jsonl", args.passages)
    rows.append(("write corpus.jsonl", time.perf_counter() - start, (work / "corpus.jsonl").stat().st_size / 2**20))

    start = time.perf_counter()
    corpus = load_corpus(work / "corpus.jsonl", workdir=work / "prepared")
    arrow = next((work / "prepared").rglob("*.arrow"))
    rows.append(("prepare Arrow corpus", time.perf_counter() - start, arrow.stat().st_size / 2**20))
    prepared_rss = rss_mb()

    model = tiny_bert(work / "tiny-bert")
    retriever = DPR(model=str(model), pooling="mean", passage_max_length=args.max_length, shard_size=args.shard_size,
                    batch_size=256, devices=["cpu", "cpu"])
    with ray_cluster(num_cpus=2):
        start = time.perf_counter()
        retriever.index(corpus, workdir=work / "index")
        seconds = time.perf_counter() - start
    vectors = sum(p.stat().st_size for p in (work / "index" / "embeddings").glob("*.npy")) / 2**20
    index_mb = (work / "index" / "index.faiss").stat().st_size / 2**20
    rows.append(("encode on 2 Ray actors + faiss Flat", seconds, index_mb))

    table = Table(title=f"{args.passages:,} synthetic passages, tiny BERT (32-d, {args.max_length} tokens), "
                        f"{args.shard_size:,} per shard")
    for column in ("step", "seconds", "MB on disk"):
        table.add_column(column, justify="right")
    for step, secs, size in rows:
        table.add_row(step, f"{secs:.1f}", f"{size:,.0f}")
    console = Console()
    console.print(table)
    workers = Table(title="peak RSS")
    for column in ("process", "rows", "seconds", "docs/s", "peak RSS MB"):
        workers.add_column(column, justify="right")
    for i, report in enumerate(retriever.encode_workers_):
        workers.add_row(f"worker {i} ({report['device']})", f"{report['rows']:,}", f"{report['seconds']:.1f}",
                        f"{report['rows'] / report['seconds']:.0f}", f"{report['peak_rss_mb']:.0f}")
    workers.add_row("driver (after preparing)", "", "", "", f"{prepared_rss:.0f}")
    workers.add_row("driver (after indexing)", "", "", "", f"{rss_mb():.0f}")
    console.print(workers)
    console.print(f"vectors on disk: {vectors:,.0f} MB ({vectors * 2**20 / args.passages:.0f} bytes per passage)")


if __name__ == "__main__":
    main()
