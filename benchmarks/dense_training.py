"""Dense retriever training on SciFact (train qrels -> 300 test claims), issue 16's controlled
comparisons, printed side by side with train seconds and peak RSS.

    nice .venv/bin/python benchmarks/dense_training.py [--arms start,inbatch,bm25x1,ance,dpr-cont,bm25x2]
        [--data ../shared/data/scifact] [--records leaderboards/records]
    nice .venv/bin/python benchmarks/dense_training.py --arms drama  # every DRAMA arm (below)

All arms start from the offline all-MiniLM-L6-v2 with DPR's two towers, mean pooling and
cosine / tau 0.05 (what MiniLM declares), seed 0, batch 16, one epoch (51 steps), passages cut
at 128 tokens (the CPU budget). ``ance`` and ``dpr-cont`` warm-start from ``bm25x1`` (``init=``)
and differ only in their negatives: ANN top 30 of the model being trained, refreshed every 17
steps, against BM25 top 30. ``ance-async`` is ``ance`` with ANCE's asynchronous refresh
(``refresh=async``: a snapshot of the model is indexed on a worker thread while training goes
on; the table gives each refresh as snapshot step→step it took over). Every stage is cached in ``$RETBENCH_HOME``: a killed run resumes,
a finished arm prints at once. p: paired randomisation test on per-query nDCG@10. Arms without
a dependency can run as parallel processes (``--arms inbatch`` next to ``--arms bm25x1``, then
``--arms bm25x1,ance`` next to ``--arms bm25x1,dpr-cont``); a last call with every arm prints
the table from the cache.

DRAMA arms (``--arms drama`` expands to all of them): SmolLM2-135M-Instruct made bidirectional
(the offline stand-in for DRAMA's pruned Llama), mean pooling, ``Query: `` prefix, normalised
vectors, passages at 128 tokens, seed 0, batch 16, one epoch with one BM25 negative (top 30, at
random) as the DPR arms; trained without (``drama-plain``) and with Matryoshka training over the
256 and 128 prefixes (``drama-mrl``), each searched at 576 (full), 256 and 128 dimensions. ``dim``
is a search-time parameter, so the three widths of one model share one encoded index. "vs start"
compares a DRAMA arm with the untrained DRAMA start at the same width.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from retbench import RunConfig, evaluate
from retbench.reporting.leaderboard import paired_randomization_p

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
MINILM = {"model": "offline:all-minilm-l6-v2", "pooling": "mean", "passage_max_length": 128}
BUDGET = {"train_batch_size": 16, "epochs": 1}
BM25 = ("bm25-hard", {"depth": 30, "pick": "random"})
# arm: (retriever, retriever args, negatives, negatives args, warm start from, control arm)
ARMS: dict[str, tuple[str, dict[str, Any], str | None, dict[str, Any], str | None, str | None]] = {
    "start": ("dpr", MINILM, None, {}, None, None),
    "inbatch": ("dpr", {**MINILM, **BUDGET}, "in-batch", {}, None, "start"),
    "bm25x1": ("dpr", {**MINILM, **BUDGET}, *BM25, None, "inbatch"),
    "ance": ("ance", {**MINILM, **BUDGET, "loss": "info-nce", "learning_rate": 2e-5}, "ann",
             {"depth": 30, "refresh_every": 17}, "bm25x1", "dpr-cont"),
    "ance-async": ("ance", {**MINILM, **BUDGET, "loss": "info-nce", "learning_rate": 2e-5}, "ann",
                   {"depth": 30, "refresh_every": 17, "refresh": "async"}, "bm25x1", "ance"),
    "dpr-cont": ("dpr", {**MINILM, **BUDGET}, *BM25, "bm25x1", "bm25x1"),
    "bm25x2": ("dpr", {**MINILM, **BUDGET, "hard_negatives": 2}, *BM25, None, "bm25x1"),
}
DRAMA_ARGS = {"passage_max_length": 128}
DRAMA_TRAINED = {"plain": {"matryoshka_dims": None}, "mrl": {"matryoshka_dims": [256, 128]}}
DRAMA_DIMS = (None, 256, 128)
START_OF: dict[str, str] = {}  # the untrained start each arm is compared with (default "start")


def _add_drama_arms() -> list[str]:
    names = []
    for kind in ("start", "plain", "mrl"):
        for dim in DRAMA_DIMS:
            at, searched = (f"@{dim}", {"dim": dim}) if dim else ("", {})
            name = f"drama-{kind}{at}"
            if kind == "start":
                ARMS[name] = ("drama", {**DRAMA_ARGS, **searched}, None, {}, None, None)
            else:
                ARMS[name] = ("drama", {**DRAMA_ARGS, **BUDGET, **DRAMA_TRAINED[kind], **searched}, *BM25, None,
                              f"drama-plain{at}" if kind == "mrl" else None)
            START_OF[name] = f"drama-start{at}"
            names.append(name)
    return names


DRAMA_ARMS = _add_drama_arms()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--records", type=Path, default=None, help="also save the records here (leaderboards)")
    args = parser.parse_args()
    table = Table(title=f"dense retrievers trained on {args.data.name} (train), nDCG@10 on test")
    for column in ("arm", "nDCG@10", "vs start (p)", "vs control (p)", "loss first→last tenth",
                   "ANN refreshes", "train s", "index s", "peak RSS MB"):
        table.add_column(column, justify="right")
    done: dict[str, Any] = {}
    names = [arm for name in args.arms.split(",") for arm in (DRAMA_ARMS if name == "drama" else [name])]
    for name in names:
        retriever, params, negatives, negatives_args, warm, control = ARMS[name]
        params = dict(params)
        if warm:
            params["init"] = done[warm].training["fit"]["model"]
        fit = {"fit_split": "train", "negatives": negatives, "negatives_args": negatives_args} if negatives else {}
        record = evaluate(RunConfig(dataset=f"beir:{args.data}", retriever=retriever, retriever_args=params, **fit),
                          records_dir=args.records)
        done[name] = record
        start = done.get(START_OF.get(name, "start"))
        table.add_row(*row(name, record, start, done.get(control) if control else None, control))
    Console().print(table)


def row(name: str, record: Any, start: Any, control: Any, control_name: str | None) -> list[str]:
    def versus(other: Any, label: str = "") -> str:
        if other is None or other is record:
            return "-"
        delta = record.metrics["nDCG@10"] - other.metrics["nDCG@10"]
        p = paired_randomization_p({q: v["nDCG@10"] for q, v in record.per_query.items()},
                                   {q: v["nDCG@10"] for q, v in other.per_query.items()})
        return f"{label}{delta:+.4f} ({p:.3f})"

    fit = record.training.get("fit", {}) if record.training else {}
    refreshes = [e for e in fit.get("negatives_log", []) if "step" in e]
    stages = record.cost.get("stage_seconds", {})
    loss = f"{fit['loss_first_tenth']:.3f}→{fit['loss_last_tenth']:.3f}" if fit else "-"
    return [name, f"{record.metrics['nDCG@10']:.4f}", versus(start),
            versus(control, f"{control_name} ") if control_name else "-", loss,
            ", ".join(_refresh_text(e) for e in refreshes) or "-",
            f"{stages.get('fit') or 0:.0f}", f"{stages.get('index') or 0:.0f}",
            f"{record.cost.get('peak_rss_mb') or 0:.0f}"]


def _refresh_text(entry: dict[str, Any]) -> str:
    """``17 (113 s)``; an asynchronous one also says the step it took over at (``17→29``)."""
    if "applied_at" not in entry:
        return f"{entry['step']} ({entry['seconds']:.0f} s)"
    landed = "unused" if entry["applied_at"] is None else entry["applied_at"]
    return f"{entry['step']}→{landed} ({entry['seconds']:.0f} s)"


if __name__ == "__main__":
    main()
