"""Open-domain QA retrieval scoring as in DPR: top-k accuracy by answer-string matching.

A passage "has the answer" when, after Unicode NFD normalisation and DPR's simple tokenisation
(runs of letters, digits and marks, or any other single non-space character), lower-cased, the
token sequence of a gold answer occurs in the passage's tokens. The ``regex`` variant
(CuratedTREC, whose answers are patterns) searches each answer as a case-insensitive regular
expression in the normalised text. Only the passage text is matched, not its title, as in
DPR's evaluation. The tokeniser is re-implemented here from the published definition.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import regex

from retbench.component import Component
from retbench.data.types import Answer, DatasetSplit, Run

_TOKEN = regex.compile(r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])", flags=regex.IGNORECASE | regex.UNICODE)
TOP_K = (1, 5, 20, 100)


def dpr_tokens(text: str) -> list[str]:
    """Lower-cased DPR SimpleTokenizer words of NFD-normalised text."""
    return [m.group().lower() for m in _TOKEN.finditer(unicodedata.normalize("NFD", text))]


@lru_cache(maxsize=65536)
def _answer_tokens(answer: str) -> tuple[str, ...]:
    return tuple(dpr_tokens(answer))


@lru_cache(maxsize=4096)
def _answer_pattern(answer: str) -> regex.Pattern | None:
    try:
        return regex.compile(unicodedata.normalize("NFD", answer),
                             flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)
    except regex.error:
        return None


def has_answer(answers: Sequence[str], text: str, *, match: str = "string") -> bool:
    """DPR's answer-string match of ``text`` against any of ``answers``."""
    if match == "regex":
        normalized = unicodedata.normalize("NFD", text)
        return any(p is not None and p.search(normalized) for p in map(_answer_pattern, answers))
    if match != "string":
        raise ValueError(f"match must be 'string' or 'regex', got {match!r}")
    return tokens_have_answer(tuple(dpr_tokens(text)), answers)


def tokens_have_answer(words: tuple[str, ...], answers: Sequence[str]) -> bool:
    """``has_answer`` on a text already split by :func:`dpr_tokens` (for callers that match
    the same passage against many questions)."""
    for answer in answers:
        needle = _answer_tokens(answer)
        size = len(needle)
        if size and needle[0] in words and any(words[i:i + size] == needle for i in range(len(words) - size + 1)):
            return True
    return False


def first_hit_ranks(split: DatasetSplit, run: Run, *, depth: int, match: str) -> dict[str, int | None]:
    """1-based rank of the first passage holding an answer, within ``depth``, per question."""
    ranks: dict[str, int | None] = {}
    for qid, gold in split.answers.items():
        if qid not in split.queries:
            continue
        ranked = [d for d, _ in sorted(run.get(qid, {}).items(), key=lambda x: (-x[1], x[0]))[:depth]]
        ranks[qid] = None
        for rank, passage in enumerate(split.corpus.get(ranked) if ranked else [], start=1):
            if has_answer(gold, passage.text, match=match):
                ranks[qid] = rank
                break
    return ranks


class TopKAccuracy(Component):
    """DPR top-k retrieval accuracy (k = 1, 5, 20, 100): the share of questions with an
    answer-bearing passage among the first k. One pass serves every k; ``match`` defaults to
    the dataset's rule (``regex`` for CuratedTREC)."""

    name = "top-k-accuracy"
    version = "1"
    higher_is_better = True
    level = "retrieval"

    def __init__(self, ks: Sequence[int] = TOP_K, match: str | None = None) -> None:
        self.ks = ks
        self.match = match

    def compute(
        self, split: DatasetSplit, *, run: Run | None, answers: Sequence[Answer] | None
    ) -> dict[str, dict[str, float]]:
        match = self.match or split.rules.answer_match
        ranks = first_hit_ranks(split, run or {}, depth=max(self.ks), match=match)
        return {
            qid: {f"Top-{k}": float(rank is not None and rank <= k) for k in self.ks}
            for qid, rank in ranks.items()
        }
