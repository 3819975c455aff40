"""Prepare a large synthetic DPR-format corpus (psgs_w100.tsv layout) and measure memory.

    .venv/bin/python benchmarks/prepare_corpus.py [--passages 1000000] [--words 100]

Each measurement runs in a fresh child process, so peak RSS is that step's own. The reference
is what a loader that holds the file in memory does: pandas.read_csv of the same TSV. Also
timed: reopening the prepared (memory-mapped) corpus. Target: preparation under 1.5 GB peak
RSS for 1M passages, reopening under 1 s.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

PREPARE = """
import json, resource, sys, time
from pathlib import Path
from retbench.data.datasets.dpr import load_wikipedia
start = time.perf_counter()
corpus = load_wikipedia(Path(sys.argv[1]), workdir=Path(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(corpus),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

REOPEN = PREPARE.replace("start = time.perf_counter()\n", "").replace(
    "corpus = load_wikipedia", "start = time.perf_counter()\ncorpus = load_wikipedia").replace(
    '"rows": len(corpus)', '"rows": len(corpus), "first": next(corpus.iter_batches(1000))[0].id')

PANDAS = """
import csv, json, resource, sys, time
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1], sep="\\t", quoting=csv.QUOTE_MINIMAL, dtype=str, keep_default_na=False)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_corpus(path: Path, passages: int, words: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(50_000)] + ['said "quoted"', "naïve", "Zürich"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("id\ttext\ttitle\n")
        for index in range(1, passages + 1):
            text = " ".join(rng.choices(vocabulary, k=words)).replace('"', '""')
            handle.write(f'{index}\t"{text}"\tTitle {index % 9973}\n')


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--words", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tsv = Path(folder) / "psgs_w100.tsv"
        start = time.perf_counter()
        write_corpus(tsv, args.passages, args.words)
        generated = time.perf_counter() - start
        ours = child(PREPARE, str(tsv), str(Path(folder) / "prepared"))
        reopen = child(REOPEN, str(tsv), str(Path(folder) / "prepared"))
        reference = child(PANDAS, str(tsv))
        size_mb = tsv.stat().st_size / 1e6
    table = Table(title=f"{args.passages:,} passages x {args.words} words ({size_mb:,.0f} MB TSV, "
                        f"generated in {generated:.0f} s)")
    for column in ("step", "seconds", "peak RSS MB", "rows"):
        table.add_column(column, justify="right")
    table.add_row("retbench prepare (stream -> Arrow)", f"{ours['seconds']:.1f}", f"{ours['rss_mb']:,.0f}",
                  f"{ours['rows']:,}")
    table.add_row("retbench reopen (memory-mapped)", f"{reopen['seconds']:.3f}", f"{reopen['rss_mb']:,.0f}",
                  f"{reopen['rows']:,}")
    table.add_row("reference: pandas.read_csv in memory", f"{reference['seconds']:.1f}",
                  f"{reference['rss_mb']:,.0f}", f"{reference['rows']:,}")
    table.add_row("ratio retbench / reference", f"{ours['seconds'] / reference['seconds']:.2f}",
                  f"{ours['rss_mb'] / reference['rss_mb']:.2f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
