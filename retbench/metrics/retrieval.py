"""Retrieval metrics through ir-measures; any measure string it parses is accepted."""

from __future__ import annotations

from collections.abc import Sequence

from retbench.errors import ConfigError
from retbench.data.types import EvalRules, Qrels, Run

DEFAULT_MEASURES = ("nDCG@10", "R@100", "MRR@10", "MAP@1000")


def parse_measures(names: Sequence[str]) -> dict[str, object]:
    """Map each user-given name to an ir-measures measure; an unknown name is a ConfigError."""
    import ir_measures

    measures: dict[str, object] = {}
    for name in names:
        try:
            measures[name] = ir_measures.parse_measure(name)
        except (NameError, ValueError, TypeError, SyntaxError) as exc:
            raise ConfigError(f"unknown metric '{name}': not a retbench metric nor an "
                              f"ir-measures measure ({exc})") from None
    return measures


def evaluated_queries(qrels: Qrels, rules: EvalRules) -> list[str]:
    """The queries a mean is taken over: those with a judged-relevant document."""
    return [q for q, docs in qrels.items() if any(r >= rules.relevance_level for r in docs.values())]


def score_run(
    names: Sequence[str], qrels: Qrels, run: Run, rules: EvalRules
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Return ``(aggregate, per_query)`` for the named measures.

    A query judged relevant somewhere but absent from the run scores 0 (trec_eval ``-c``), so
    a retriever cannot gain by returning nothing.
    """
    import ir_measures

    measures = parse_measures(names)
    by_measure = {str(m): n for n, m in measures.items()}
    queries = evaluated_queries(qrels, rules)
    per_query: dict[str, dict[str, float]] = {q: {n: 0.0 for n in names} for q in queries}
    judged = {q: qrels[q] for q in queries}
    answered = {q: docs for q, docs in run.items() if q in judged and docs}
    if answered:
        for result in ir_measures.iter_calc(list(measures.values()), judged, answered):
            per_query[result.query_id][by_measure[str(result.measure)]] = float(result.value)
    aggregate = {
        n: (sum(per_query[q][n] for q in queries) / len(queries)) if queries else 0.0 for n in names
    }
    return aggregate, per_query


def remove_self_hits(run: Run, *, k: int) -> Run:
    """Drop documents whose id equals the query id (ArguAna, Quora), then keep the top k."""
    cleaned: Run = {}
    for qid, docs in run.items():
        kept = sorted(((d, s) for d, s in docs.items() if d != qid), key=lambda x: -x[1])[:k]
        cleaned[qid] = dict(kept)
    return cleaned
