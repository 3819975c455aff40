"""Dense retrieval with the offline all-MiniLM-L6-v2 weights on SciFact: the harness's `dpr`
retriever against sentence-transformers' own ``encode`` + exact search, in the same run.

    .venv/bin/python benchmarks/dense_encoding.py [--data ../shared/data/scifact]
        [--speed-docs 1000] [--repeats 3] [--skip-quality]

Quality: both encode the whole corpus (title + " " + text, 256 tokens, mean pooling,
normalised) and rank it exactly for the 300 test claims; nDCG@10 by ir-measures, next to
MTEB's published 0.645. Speed: documents/s encoding the first ``--speed-docs`` passages,
median over ``--repeats``, one thread set for both (the machine's default).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from retbench_dense.retriever import DPR
from rich.console import Console
from rich.table import Table
from sentence_transformers import SentenceTransformer

from retbench.data.datasets.beir import load_beir_split
from retbench.metrics.retrieval import score_run
from retbench.model_specs import resolve_model
from retbench.data.types import Corpus

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
MTEB_PUBLISHED = 0.645
MODEL = "offline:all-minilm-l6-v2"


def harness(split, corpus: Corpus) -> tuple[dict, float]:
    retriever = DPR(model=MODEL, pooling="mean", normalize=True, batch_size=32)
    retriever.encoder()  # load the weights outside the timing, as for the reference
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        retriever.index(corpus, workdir=Path(workdir))
        seconds = time.perf_counter() - start
        run = retriever.search(split.queries, k=100) if split is not None else {}
    return run, seconds


def reference(model: SentenceTransformer, split, corpus: Corpus) -> tuple[dict, float]:
    passages = list(corpus)
    texts = [p.contents() for p in passages]
    start = time.perf_counter()
    docs = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    run = {}
    if split is not None:
        qids = list(split.queries)
        queries = model.encode([split.queries[q] for q in qids], batch_size=32, normalize_embeddings=True)
        scores = queries @ docs.T
        top = np.argsort(-scores, axis=1)[:, :100]
        run = {q: {passages[j].id: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}
    return run, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--speed-docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    split = load_beir_split(args.data, "test", workdir=Path(tempfile.mkdtemp()), name="scifact")
    model = SentenceTransformer(resolve_model(MODEL).path, device="cpu")
    model.max_seq_length = 256
    table = Table(title="all-MiniLM-L6-v2 on SciFact: retbench dpr vs sentence-transformers")
    for column in ("measure", "retbench", "sentence-transformers", "ratio / difference"):
        table.add_column(column, justify="right")
    if not args.skip_quality:
        ours, _ = harness(split, split.corpus)
        theirs, _ = reference(model, split, split.corpus)
        a = score_run(["nDCG@10"], split.qrels, ours, split.rules)[0]["nDCG@10"]
        b = score_run(["nDCG@10"], split.qrels, theirs, split.rules)[0]["nDCG@10"]
        table.add_row("nDCG@10", f"{a:.4f}", f"{b:.4f}", f"{a - b:+.4f}")
        table.add_row("nDCG@10 vs MTEB 0.645", f"{a:.4f}", f"{MTEB_PUBLISHED:.3f}", f"{a - MTEB_PUBLISHED:+.4f}")
    sample = Corpus.from_passages(split.corpus.slice(0, args.speed_docs))
    ours_s = statistics.median(harness(None, sample)[1] for _ in range(args.repeats))
    theirs_s = statistics.median(reference(model, None, sample)[1] for _ in range(args.repeats))
    n = len(sample)
    table.add_row(f"docs/s (median of {args.repeats}, {n} docs)", f"{n / ours_s:.1f}", f"{n / theirs_s:.1f}",
                  f"{theirs_s / ours_s:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
