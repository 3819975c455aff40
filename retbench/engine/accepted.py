"""What the pipeline accepts from components before anything is scored or cached.

A retriever's run is cut to ``k`` (best scores first), must hold finite numeric scores and ids
of the corpus, and may only answer the queries it was asked; a reader must return one
:class:`~retbench.data.types.Answer` per question; a negative sampler one list of corpus ids (or
Passages) per training item, none of them its positives (trainers call
:func:`checked_negatives`); a reranker scores exactly the candidates it was given. Anything else is a :class:`ComponentError` naming
the component, raised before the shard is written, so nothing invalid is ever committed.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Container, Mapping, Sequence
from typing import Any

from retbench.attribution import ComponentError, warn
from retbench.data.types import Answer, Run


def checked_run(run: Any, queries: Collection[str], *, k: int, corpus: Container[str], who: str,
                self_hits: bool = False, call: str = "search") -> Run:
    """``run`` validated and cut to the ``k`` best documents of each query; with ``self_hits``
    (datasets that ignore identical ids) a document named like its query is let through, to be
    removed afterwards."""
    if not isinstance(run, Mapping):
        raise ComponentError(f"{who}: {call} returned {type(run).__name__}, expected a dict "
                             "{query id: {document id: score}}")
    extra = [q for q in run if q not in queries]
    if extra:
        raise ComponentError(f"{who}: {call} returned results for {len(extra)} query id(s) it was not asked "
                             f"about, e.g. {extra[0]!r}")
    out: Run = {}
    cut = 0
    for qid in queries:
        ranked = run.get(qid, {})
        if not isinstance(ranked, Mapping):
            raise ComponentError(f"{who}: {call} returned {type(ranked).__name__} for query {qid!r}, expected "
                                 "a dict {document id: score}")
        scores: dict[str, float] = {}
        for doc, score in ranked.items():
            if isinstance(score, bool) or not isinstance(score, (int, float)) and not hasattr(score, "__float__"):
                raise ComponentError(f"{who}: {call} gave document {doc!r} of query {qid!r} the score {score!r}, "
                                     "not a number")
            value = float(score)
            if not math.isfinite(value):
                raise ComponentError(f"{who}: {call} gave document {doc!r} of query {qid!r} the score {value}; "
                                     "scores must be finite")
            if not isinstance(doc, str) or doc not in corpus and not (self_hits and doc == qid):
                raise ComponentError(f"{who}: {call} returned document {doc!r} for query {qid!r}, which is not "
                                     "in the corpus")
            scores[doc] = value
        if len(scores) > k:
            cut += 1
            scores = dict(sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k])
        out[qid] = scores
    if cut:
        warn(f"{who}: {call} returned more than k={k} documents for {cut} query(ies); kept the best {k}")
    return out


def checked_answers(answers: Any, queries: Collection[str], *, who: str) -> list[Answer]:
    """``answers`` validated: a list of Answers, one per question asked, in the questions' order."""
    if isinstance(answers, (str, bytes)) or not hasattr(answers, "__iter__"):
        raise ComponentError(f"{who}: answer returned {type(answers).__name__}, expected a list of Answer")
    answers = list(answers)
    wrong = [a for a in answers if not isinstance(a, Answer)]
    if wrong:
        raise ComponentError(f"{who}: answer returned a {type(wrong[0]).__name__}, expected Answer objects")
    by_qid = {a.qid: a for a in answers}
    missing = [q for q in queries if q not in by_qid]
    extra = [q for q in by_qid if q not in queries]
    if missing or extra or len(by_qid) != len(answers):
        raise ComponentError(f"{who}: answer returned {len(answers)} answers for {len(queries)} questions "
                             f"(missing {missing[:3]}, unasked {extra[:3]})")
    bad = [a.qid for a in answers if not isinstance(a.text, str) or not isinstance(a.extra, dict)]
    if bad:
        raise ComponentError(f"{who}: the answer to {bad[0]!r} has a text that is not a str or extra not a dict")
    return [by_qid[q] for q in queries]


def checked_negatives(negatives: Any, batch: Sequence[Mapping[str, Any]], *, k: int, corpus: Container[str],
                      who: str) -> list[list[Any]]:
    """A negative sampler's picks validated: one list per batch item, of corpus ids or Passages
    (passages it wrote), never the item's own positives; more than ``k`` keeps the first ``k``."""
    from retbench.data.types import Passage

    if not isinstance(negatives, list) or len(negatives) != len(batch):
        got = len(negatives) if isinstance(negatives, list) else type(negatives).__name__
        raise ComponentError(f"{who}: sample returned {got} for a batch of {len(batch)}, expected one list per item")
    out, cut = [], 0
    for item, picks in zip(batch, negatives):
        if not isinstance(picks, (list, tuple)):
            raise ComponentError(f"{who}: sample returned {type(picks).__name__} for {item['qid']!r}, expected a list")
        for pick in picks:
            if isinstance(pick, Passage):
                continue
            if not isinstance(pick, str) or pick not in corpus:
                raise ComponentError(f"{who}: negative {pick!r} for {item['qid']!r} is not in the corpus")
            if pick in item.get("positives", ()):
                raise ComponentError(f"{who}: negative {pick!r} for {item['qid']!r} is one of its positives")
        cut += len(picks) > k
        out.append(list(picks)[:k])
    if cut:
        warn(f"{who}: sample returned more than k={k} negatives for {cut} item(s); kept the first {k}")
    return out


def checked_reranking(run: Any, candidates: Mapping[str, Sequence[str]], *, who: str) -> Run:
    """A reranker's scores, validated: exactly the candidates of each query it was given."""
    allowed = {d for docs in candidates.values() for d in docs}
    out = checked_run(run, list(candidates), k=max((len(c) for c in candidates.values()), default=1) or 1,
                      corpus=allowed, who=who, call="rerank")
    for qid, docs in candidates.items():
        given, scored = set(docs), set(out[qid])
        stray = sorted(scored - given)
        if stray:
            raise ComponentError(f"{who}: rerank scored document {stray[0]!r} for query {qid!r}, which was not one of "
                                 "its candidates")
        missing = len(given - scored)
        if missing:
            raise ComponentError(f"{who}: rerank left out {missing} of the {len(docs)} candidates of query {qid!r}; "
                                 "score every candidate")
    return out
