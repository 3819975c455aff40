"""Generation-bound work on Ray workers (issue 20, part 3) against one local process, same run.

    .venv/bin/python benchmarks/scale_generation.py [--questions 48] [--shard-size 8]
        [--prompts 32] [--workers 2] [--generator hf] [--model offline:smollm2-135m-instruct]

Answering: `retbench run --dataset sample --retriever bm25 --reader rag` on the first
``--questions`` questions, each setting from an empty cache: in this process (torch on every
core), and with ``--workers`` Ray actors of one CPU (one thread) each, the answer stage's shards
(``--shard-size`` questions) handed to them as they finish. Prints the answer stage's seconds,
questions/s, the ratio, and whether the answers and EM / F1 are the same.

Training-data generation: ``--prompts`` SyNeg-sized prompts (a sample passage and a question)
through the generator in this process and through the pooled generator the training-data
writers get with ``--workers`` (each call's prompts split over the actors). Greedy, 64 new
tokens; one untimed warm-up each (model load). Prints seconds, prompts/s, the ratio and how
many outputs are equal.

The local Ray instance's start-up is timed apart: it is paid once per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from retbench.engine.cache import Cache
from retbench.engine.config import RunConfig
from retbench.engine.evaluate import evaluate
from retbench.engine.executors import PluginSource, ray_cluster
from retbench.engine.workers import PooledGenerator, RayWorkers, WorkerPlan


def answers_of(record: Any, home: Path) -> dict[str, str]:
    stage = Cache(home).stage("answer", record.stages["answer"]["key"])
    manifest = stage.manifest()
    return {a["qid"]: a["text"] for i in range(manifest["shards"])
            for a in stage.read_shard(i, manifest["shard_size"])["answers"]}


def answering(args: argparse.Namespace, table: Table) -> None:
    config = RunConfig(dataset="sample", retriever="bm25", reader="rag", generator=args.generator,
                       generator_args={"model": args.model}, limit=args.questions, shard_size=args.shard_size)
    results = {}
    for label, plan in (("local, 1 process", None),
                        (f"{args.workers} Ray workers", WorkerPlan(args.workers, plugins=PluginSource()))):
        home = Path(tempfile.mkdtemp(prefix="retbench-scale-gen-"))
        record = evaluate(config, cache=Cache(home), workers=plan)
        results[label] = (record.cost["stage_seconds"]["answer"], answers_of(record, home), record.metrics)
    (base_s, base_answers, base_metrics) = results["local, 1 process"]
    for label, (seconds, answers, metrics) in results.items():
        table.add_row("answer stage", label, f"{seconds:.1f}", f"{args.questions / seconds:.2f} q/s",
                      f"{base_s / seconds:.2f}x",
                      f"{sum(answers[q] == a for q, a in base_answers.items())}/{len(base_answers)}, "
                      f"EM/F1 {'same' if metrics == base_metrics else 'differ'}")


def generation(args: argparse.Namespace, table: Table) -> None:
    from retbench_readers.hf_generator import HFGenerator

    from retbench.data.datasets.sample import SampleDataset

    split = SampleDataset().load("test", workdir=Path(tempfile.mkdtemp()))
    passages = list(split.corpus)
    questions = list(split.queries.values())
    prompts = [f"Query: {questions[i % len(questions)]}\nPassage: {passages[i % len(passages)].text}\n\n"
               "Write a passage on the same topic that does not answer the query." for i in range(args.prompts)]
    args_ = {"model": args.model, "max_new_tokens": 64}
    local = HFGenerator(**args_)
    config = RunConfig(dataset="sample", reader="rag", generator="hf", generator_args=args_)
    workers = RayWorkers(WorkerPlan(args.workers, plugins=PluginSource()), config, Path(tempfile.mkdtemp()))
    try:
        pooled = PooledGenerator(local, workers)
        timings: dict[str, list[float]] = {"local, 1 process": [], f"{args.workers} Ray workers": []}
        outputs = {}
        for label, generator in zip(timings, (local, pooled)):
            generator.generate(prompts[:4])  # warm-up: the model loads (on every actor)
            for _ in range(args.repeats):
                start = time.perf_counter()
                outputs[label] = generator.generate(prompts)
                timings[label].append(time.perf_counter() - start)
    finally:
        workers.close()
    base = statistics.median(timings["local, 1 process"])
    reference = outputs["local, 1 process"]
    for label, seconds in timings.items():
        median = statistics.median(seconds)
        same = sum(a == b for a, b in zip(outputs[label], reference))
        table.add_row("generator calls", label, f"{median:.1f}", f"{args.prompts / median:.2f} prompts/s",
                      f"{base / median:.2f}x", f"{same}/{len(reference)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--generator", default="hf")
    parser.add_argument("--model", default="offline:smollm2-135m-instruct")
    args = parser.parse_args()
    start = time.perf_counter()
    with ray_cluster(num_cpus=args.workers):
        ray_start = time.perf_counter() - start
        table = Table(title=f"{args.model} through {args.generator}: local process vs {args.workers} Ray workers "
                            f"(1 CPU each); Ray start-up {ray_start:.1f} s, apart")
        for column in ("work", "setting", "seconds", "rate", "ratio vs local", "outputs equal to local"):
            table.add_column(column, justify="right")
        answering(args, table)
        generation(args, table)
    Console().print(table)
    print(json.dumps({"ray_start_seconds": round(ray_start, 2)}))


if __name__ == "__main__":
    main()
