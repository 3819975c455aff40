"""Encoding speed and memory of a pruned DRAMA backbone against the model it was pruned from
(issue 22): the `drama` retriever encoding the first ``--docs`` SciFact passages with each
backbone, in alternating child processes (one per model and repeat, after a warm-up batch), so
each peak RSS is that model's alone.

    .venv/bin/python benchmarks/pruned_encoding.py --pruned <folder from retbench prune>
        [--source offline:smollm2-135m-instruct] [--docs 256] [--repeats 3]

Prints docs/s (median of the repeats), peak RSS, parameters, and the ratios to the source next
to the parameter ratio they are expected to follow.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def worker(model: str, data: Path, docs: int) -> None:
    from retbench_dense.retriever import DRAMA

    from retbench import Passage

    passages = []
    with (data / "corpus.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            passages.append(Passage(row["_id"], row["text"], row.get("title", "")))
            if len(passages) == docs:
                break
    retriever = DRAMA(model=model, passage_max_length=128)
    encoder = retriever.encoder()
    retriever.encode_passages(passages[:16])  # warm-up
    start = time.perf_counter()
    retriever.encode_passages(passages)
    seconds = time.perf_counter() - start
    parameters = sum(p.numel() for p in encoder.query_model.parameters())
    print(json.dumps({"docs_per_s": docs / seconds, "parameters": parameters,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pruned", required=True)
    parser.add_argument("--source", default="offline:smollm2-135m-instruct")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.docs)
        return
    from rich.console import Console
    from rich.table import Table

    results: dict[str, list[dict]] = {args.source: [], args.pruned: []}
    for _ in range(args.repeats):
        for model in results:
            out = subprocess.run([sys.executable, __file__, "--worker", model, "--data", str(args.data), "--docs",
                                  str(args.docs), "--pruned", args.pruned], capture_output=True, text=True, check=True)
            results[model].append(json.loads(out.stdout.strip().splitlines()[-1]))
    table = Table(title=f"DRAMA encoding, {args.docs} SciFact passages (128 tokens), median of {args.repeats}")
    for column in ("backbone", "parameters", "docs/s", "peak RSS MB", "docs/s ratio", "RSS ratio", "parameter ratio"):
        table.add_column(column, justify="right")
    base = {k: statistics.median(r[k] for r in results[args.source]) for k in ("docs_per_s", "peak_rss_mb", "parameters")}
    for name, model in (("source", args.source), ("pruned", args.pruned)):
        m = {k: statistics.median(r[k] for r in results[model]) for k in ("docs_per_s", "peak_rss_mb", "parameters")}
        table.add_row(name, f"{m['parameters']:,.0f}", f"{m['docs_per_s']:.1f}", f"{m['peak_rss_mb']:.0f}",
                      f"{m['docs_per_s'] / base['docs_per_s']:.2f}x", f"{m['peak_rss_mb'] / base['peak_rss_mb']:.2f}",
                      f"{m['parameters'] / base['parameters']:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
