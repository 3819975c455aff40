"""Train dense retrievers on SciFact's train split and compare them with their untrained start
on the test split, in one run: DPR (BM25 hard negatives), ANCE (ANN negatives, refreshed),
DRAMA (SmolLM2-135M made bidirectional).

    .venv/bin/python benchmarks/dense_training.py [--systems dpr,ance,drama]
        [--data ../shared/data/scifact] [--records leaderboards/records]

DPR and ANCE start from the offline all-MiniLM-L6-v2 weights (mean pooling, as the model
declares); DRAMA from the offline SmolLM2-135M-Instruct. Every system trains with the same
seed, one epoch of the 809 training claims, batch 16. Models, indexes and runs are cached in
``$RETBENCH_HOME``, so an interrupted benchmark resumes. Prints nDCG@10 of start and trained
model, the loss at the start and end of training, ANN refreshes and training time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from retbench import RunConfig, evaluate

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
MINILM = {"model": "offline:all-minilm-l6-v2", "pooling": "mean"}
SYSTEMS = {
    "dpr": ("dpr", MINILM, {}),
    "ance": ("ance", MINILM, {"refresh_every": 20}),
    "drama": ("drama", {"passage_max_length": 128, "batch_size": 16}, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="dpr,ance,drama")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--records", type=Path, default=None, help="also save the records here (leaderboards)")
    args = parser.parse_args()
    table = Table(title=f"dense retrievers trained on {args.data.name} (train) and scored on test")
    for column in ("system", "nDCG@10 start", "nDCG@10 trained", "gain", "loss start→end", "ANN refreshes",
                   "train s", "index s"):
        table.add_column(column, justify="right")
    for name in args.systems.split(","):
        retriever, params, negatives_args = SYSTEMS[name]
        common = {"dataset": f"beir:{args.data}", "retriever": retriever, "retriever_args": params}
        start = evaluate(RunConfig(**common), records_dir=args.records)
        trained = evaluate(RunConfig(**common, fit_split="train", negatives_args=negatives_args),
                           records_dir=args.records)
        fit = trained.training["fit"]
        refreshes = [e for e in fit.get("negatives_log", []) if "step" in e]
        table.add_row(
            f"{name} ({fit['negatives']})",
            f"{start.metrics['nDCG@10']:.4f}",
            f"{trained.metrics['nDCG@10']:.4f}",
            f"{trained.metrics['nDCG@10'] - start.metrics['nDCG@10']:+.4f}",
            f"{fit['loss_first_tenth']:.3f}→{fit['loss_last_tenth']:.3f}",
            ", ".join(f"step {e['step']} ({e['seconds']:.0f} s)" for e in refreshes) or "-",
            f"{trained.cost['stage_seconds'].get('fit') or 0:.0f}",
            f"{trained.cost['stage_seconds'].get('index') or 0:.0f}",
        )
        Console().print(table)


if __name__ == "__main__":
    main()
