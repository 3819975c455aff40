"""Scale-out on this machine (issue 20): dense encoding of SciFact by 2 Ray actors against one
local process, and a 4-cell `retbench grid` on Ray against the same grid run sequentially.

    .venv/bin/python benchmarks/scale_encoding.py [--docs 5183] [--model offline:all-minilm-l6-v2]
        [--repeats 1] [--skip-grid]

Encoding: the `dpr` retriever (mean pooling, 128 tokens) indexes the first ``--docs`` passages
into a fresh folder, once in this process (torch on every core) and once with
``devices=["cpu","cpu"]`` (two Ray actors of one CPU each, on a local Ray instance started
beforehand, whose start-up is timed apart). Prints docs/s (median of the repeats), the ratio,
and the largest absolute difference between the two sets of vectors.

Grid: `--retriever dpr` on 2WikiMultihopQA's and HotpotQA's 500-question subsets at
`--k 10,100` (4 cells; the two k of a dataset share one index, so the second waits for the
first's lock), each from an empty cache, with `--executor local` and `--executor ray`
(`--cell-resources cpu=1`, a local instance of 2 CPUs). Prints wall-clock seconds and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_passages(docs: int) -> list:
    from retbench import Passage

    passages = []
    with (SHARED / "scifact" / "corpus.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            passages.append(Passage(row["_id"], row["text"], row.get("title", "")))
            if len(passages) == docs:
                break
    return passages


def encode(model: str, corpus, folder: Path, devices: list[str] | None) -> float:
    from retbench_dense.retriever import DPR

    retriever = DPR(model=model, pooling="mean", passage_max_length=128, shard_size=512, devices=devices)
    retriever.encode_passages(corpus.slice(0, 16))  # load the model and warm up, as the actors do at start
    start = time.perf_counter()
    retriever.index(corpus, workdir=folder)
    return time.perf_counter() - start


def max_abs_difference(one: Path, two: Path) -> float:
    shards = sorted((one / "embeddings").glob("shard-*.npy"))
    return max(float(np.abs(np.load(s) - np.load(two / "embeddings" / s.name)).max()) for s in shards)


def encoding(args: argparse.Namespace) -> list[tuple[str, ...]]:
    import pyarrow as pa

    from retbench import Corpus, ray_cluster

    passages = load_passages(args.docs)
    work = Path(tempfile.mkdtemp(prefix="scale-encoding-"))
    table = Corpus.from_passages(passages).table
    with pa.OSFile(str(work / "corpus.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    corpus = Corpus.open(work / "corpus.arrow", fingerprint="bench")  # memory-mapped, as a run's corpus is
    local, on_ray, differences = [], [], []
    began = time.perf_counter()
    with ray_cluster(num_cpus=2):
        startup = time.perf_counter() - began
        for repeat in range(args.repeats):
            local.append(encode(args.model, corpus, work / f"local-{repeat}", None))
            on_ray.append(encode(args.model, corpus, work / f"ray-{repeat}", ["cpu", "cpu"]))
            differences.append(max_abs_difference(work / f"local-{repeat}", work / f"ray-{repeat}"))
    docs = len(passages)
    local_rate, ray_rate = docs / statistics.median(local), docs / statistics.median(on_ray)
    return [("1 local process", f"{os.cpu_count()} threads", f"{local_rate:.1f}", "1.00x", "—"),
            ("2 Ray actors", "1 CPU each", f"{ray_rate:.1f}", f"{ray_rate / local_rate:.2f}x",
             f"{max(differences):.2e}"),
            ("Ray start-up", f"{startup:.1f} s", "", "", "")]


def grid(executor: str) -> float:
    home = tempfile.mkdtemp(prefix=f"scale-grid-{executor}-")
    datasets = (f"2wikimultihopqa:{SHARED / '2wikimultihopqa' / 'dev_subset500.json'},"
                f"hotpotqa:{SHARED / 'hotpotqa' / 'hotpot_dev_fullwiki_v1.subset500.json'}")
    command = [sys.executable, "-m", "retbench", "--cache-dir", home, "grid", "--retriever", "dpr",
               "--retriever-arg", "model=offline:all-minilm-l6-v2", "--retriever-arg", "pooling=mean",
               "--retriever-arg", "passage_max_length=128", "--dataset", datasets, "--k", "10,100",
               "--executor", executor, "--json"]
    if executor == "ray":
        command += ["--cell-resources", "cpu=1"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"grid --executor {executor} failed: {done.stderr.strip().splitlines()[-1]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--model", default="offline:all-minilm-l6-v2")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-encoding", action="store_true")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not args.skip_encoding:
        table = Table(title=f"Encoding {args.docs} SciFact passages (dpr, {args.model}, 128 tokens), "
                            f"median of {args.repeats}")
        for column in ("encoder", "threads", "docs/s", "ratio", "max |difference|"):
            table.add_column(column, justify="right")
        for row in encoding(args):
            table.add_row(*row)
        console.print(table)
    if args.skip_grid:
        return
    sequential, parallel = grid("local"), grid("ray")
    table = Table(title="retbench grid, 4 cells (dpr x 2WikiMultihopQA, HotpotQA x k 10, 100), empty caches")
    for column in ("executor", "wall-clock s", "ratio"):
        table.add_column(column, justify="right")
    table.add_row("local (sequential)", f"{sequential:.1f}", "1.00x")
    table.add_row("ray (2 CPUs, cpu=1 per cell)", f"{parallel:.1f}", f"{sequential / parallel:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
