"""Answer metrics: exact match and token F1 with SQuAD normalisation, max over gold answers.

``yes_no_strict`` (the rule of the PRAG / DyPRAG / HotpotQA evaluation): when the
prediction or a gold answer normalises to "yes", "no" or "noanswer" and the two differ, F1
is 0, so a verbose or wrong yes/no answer gets no partial credit. ``auto`` follows the
dataset's rules (``EvalRules.yes_no_strict``, on for multi-hop datasets).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from retbench.component import Component
from retbench.data.types import Answer, DatasetSplit, Run

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in gold))


YES_NO = frozenset({"yes", "no", "noanswer"})


def token_f1(prediction: str, gold: Sequence[str], *, yes_no_strict: bool = False) -> float:
    normalized = normalize_answer(prediction)
    pred = normalized.split()
    best = 0.0
    for answer in gold:
        reference = normalize_answer(answer)
        if yes_no_strict and (normalized in YES_NO or reference in YES_NO) and normalized != reference:
            continue
        ref = reference.split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(ref)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


class _AnswerMetric(Component):
    version = "2"
    higher_is_better = True
    level = "answer"

    def __init__(self, yes_no_strict: bool | str = "auto") -> None:
        self.yes_no_strict = yes_no_strict

    def strict_for(self, split: DatasetSplit) -> bool:
        if self.yes_no_strict == "auto":
            return bool(getattr(split.rules, "yes_no_strict", False))
        return bool(self.yes_no_strict)

    def score(self, prediction: str, gold: Sequence[str]) -> float:
        raise NotImplementedError

    def compute(
        self, split: DatasetSplit, *, run: Run | None, answers: Sequence[Answer] | None
    ) -> dict[str, float]:
        predicted = {a.qid: a.text for a in answers or ()}
        self.strict_ = self.strict_for(split)
        return {
            qid: self.score(predicted.get(qid, ""), gold)
            for qid, gold in split.answers.items()
            if qid in split.queries
        }


class ExactMatch(_AnswerMetric):
    name = "EM"

    def score(self, prediction: str, gold: Sequence[str]) -> float:
        return exact_match(prediction, gold)


class F1(_AnswerMetric):
    name = "F1"

    def score(self, prediction: str, gold: Sequence[str]) -> float:
        return token_f1(prediction, gold, yes_no_strict=getattr(self, "strict_", False))
