"""Generation cost of the synth plugin's LLM steps: windows of several queries (listwise
reranking) and chunks of (query, positive) pairs (SyNeg) sent to the generator as one batch,
against the one-prompt-at-a-time loop of the reference implementations (RankGPT's sliding
window reranks one query after another; a SyNeg pair is written, then verified), in one run.

    .venv/bin/python benchmarks/synth_generation.py [--queries 8] [--repeats 3] [--data ../shared/data/scifact]

Both sides use the same offline SmolLM2-135M-Instruct ``hf`` generator (greedy) on SciFact
test claims, the BM25 top 20 of each as candidates (window 8, step 4) and, for SyNeg, each
claim's first relevant abstract as the positive. Reports median seconds per query / pair, the
ratio, and how many outputs agree (batches are left-padded, so a few greedy continuations may
differ in the last digits of their logits).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from retbench_readers.hf_generator import HFGenerator
from retbench_synth.listwise import rerank, rerank_many
from retbench_synth.syneg import SynegNegatives
from rich.console import Console
from rich.table import Table

from retbench import component_factory
from retbench.data.datasets.beir import load_beir_split


def median_seconds(job, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = job()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    split = load_beir_split(args.data, "test", workdir=Path(tempfile.mkdtemp()), name="scifact")
    qids = sorted(split.queries)[: args.queries]
    queries = [split.queries[q] for q in qids]
    bm25 = component_factory()("retrievers", "bm25")
    bm25.index(split.corpus, workdir=Path(tempfile.mkdtemp()))
    run = bm25.search({q: split.queries[q] for q in qids}, k=20)
    ranked = [[d for d, _ in sorted(run[q].items(), key=lambda x: -x[1])] for q in qids]
    texts = {p.id: p.contents(": ") for p in split.corpus.get(sorted({d for r in ranked for d in r}))}
    candidates = [[texts[d] for d in r] for r in ranked]
    generator = HFGenerator(batch_size=8)
    generator.load()

    def rank(prompts: list[str]) -> list[str]:
        return generator.generate(prompts, max_new_tokens=64)

    table = Table(title=f"SmolLM2-135M on {len(qids)} SciFact claims (median of {args.repeats})")
    for column in ("step", "reference s/item", "retbench s/item", "speed-up", "same output"):
        table.add_column(column)

    reference, one_by_one = median_seconds(lambda: [rerank(q, c, rank) for q, c in zip(queries, candidates)],
                                           args.repeats)
    ours, batched = median_seconds(lambda: rerank_many(queries, candidates, rank), args.repeats)
    same = sum(a[0] == b[0] for a, b in zip(one_by_one, batched))
    table.add_row("listwise rerank (top 20)", f"{reference / len(qids):.2f}", f"{ours / len(qids):.2f}",
                  f"{reference / ours:.2f}x", f"{same}/{len(qids)} orders")

    items = [{"qid": q, "query": split.queries[q], "positives": [sorted(split.qrels[q])[0]]} for q in qids]
    syneg = SynegNegatives(verify=True)

    def write(chunk: int) -> dict:
        return syneg.write_negatives(items, corpus=split.corpus, generator=generator,
                                     workdir=Path(tempfile.mkdtemp()), chunk=chunk)

    reference, alone = median_seconds(lambda: write(1), args.repeats)
    ours, together = median_seconds(lambda: write(16), args.repeats)
    same = sum(alone.get(q) == together.get(q) for q in qids)
    table.add_row("syneg negative + verification", f"{reference / len(qids):.2f}", f"{ours / len(qids):.2f}",
                  f"{reference / ours:.2f}x", f"{same}/{len(qids)} negatives")
    Console().print(table)


if __name__ == "__main__":
    main()
