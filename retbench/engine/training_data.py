"""Synthetic training data (augmenters) turned into a training split, and mixed with the
original one.

An augmenter returns items ``{"qid", "query", "positives", "distractors"}`` (passage ids of
the corpus) and optionally ``"new_passages"`` ([{"id", "text"}], passages the generator wrote,
added to the corpus). Positives become qrels, distractors the split's hard negatives (which
``bm25-hard`` uses before retrieving its own).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from retbench.engine.cache import stage_key
from retbench.data.types import Corpus, DatasetSplit, Passage


def training_split(items: Sequence[dict[str, Any]], corpus: Corpus, *, name: str, recipe: str) -> DatasetSplit:
    new = [Passage(id=p["id"], text=p["text"]) for item in items for p in item.get("new_passages", [])]
    if new:
        corpus = Corpus.from_passages([*corpus, *new])
    return DatasetSplit(
        name=name, split=recipe, corpus=corpus,
        queries={i["qid"]: i["query"] for i in items},
        qrels={i["qid"]: {d: 1 for d in i["positives"]} for i in items},
        hard_negatives={i["qid"]: list(i["distractors"]) for i in items},
        revision=stage_key(items=[[i["qid"], i["query"], i["positives"], i["distractors"]] for i in items])[:16],
    )


def mix(train: DatasetSplit, items: Sequence[dict[str, Any]], *, recipe: str, ratio: float | None,
        seed: int) -> DatasetSplit:
    """``train`` plus synthetic ``items``: all of them, or ``ratio`` items per original
    question drawn with ``seed``."""
    chosen = list(items)
    if ratio is not None:
        wanted = min(len(chosen), round(ratio * len(train.queries)))
        chosen = random.Random(seed).sample(chosen, wanted)
    synthetic = training_split(chosen, train.corpus, name=train.name, recipe=recipe)
    return DatasetSplit(
        name=train.name,
        split=f"{train.split} + {recipe}",
        corpus=synthetic.corpus,
        queries={**train.queries, **synthetic.queries},
        qrels={**train.qrels, **synthetic.qrels},
        hard_negatives={**train.hard_negatives, **synthetic.hard_negatives},
        revision=stage_key(train=train.revision, synthetic=synthetic.revision)[:16],
    )
