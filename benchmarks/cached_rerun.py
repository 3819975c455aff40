"""Wall and CPU seconds of a fully cached `retbench run` (issue 14 target: < 0.6 s), next to the
floor of the same interpreter importing only the CLI module and exiting.

    .venv/bin/python benchmarks/cached_rerun.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    env = {**os.environ, "RETBENCH_HOME": tempfile.mkdtemp(prefix="retbench-bench-")}
    run = [sys.executable, "-m", "retbench", "run", "--retriever", "bm25", "--dataset", "sample", "--quiet"]
    floor = [sys.executable, "-c", "import retbench.cli"]
    subprocess.run(run, env=env, check=True)  # fills the cache
    rows = {}
    for label, command in (("cached `retbench run`", run), ("import retbench.cli only", floor)):
        samples = [measure(command, env) for _ in range(runs)]
        rows[label] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
    print(f"| what ({runs} runs, median) | wall s | CPU s |\n|---|---|---|")
    for label, (wall, cpu) in rows.items():
        print(f"| {label} | {wall:.3f} | {cpu:.3f} |")
    (run_wall, run_cpu), (floor_wall, floor_cpu) = rows.values()
    print(f"ratio cached run / import floor: wall {run_wall / floor_wall:.2f}, CPU {run_cpu / floor_cpu:.2f}")


if __name__ == "__main__":
    main()
