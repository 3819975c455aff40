"""Score a run and/or answers: ir-measures strings, registered metrics, per-type breakdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from retbench.metrics.retrieval import DEFAULT_MEASURES, score_run
from retbench.host.registry import Registries
from retbench.data.types import Answer, DatasetSplit, Run


@dataclass
class Scores:
    metrics: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def add(self, name: str, per_query: dict[str, float], *, higher_is_better: bool) -> None:
        self.metrics[name] = sum(per_query.values()) / len(per_query) if per_query else 0.0
        self.higher_is_better[name] = higher_is_better
        for qid, value in per_query.items():
            self.per_query.setdefault(qid, {})[name] = value


def split_metric_list(text: str) -> list[str]:
    """``nDCG@10,R@100`` -> two names; commas inside parentheses (``AP(rel=2,judged_only=True)``)
    belong to the measure."""
    names, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += char
    names.append(current.strip())
    return [n for n in names if n]


def check_metric_names(names: Sequence[str], registries: Registries) -> None:
    """Refuse, before any work, a metric that is neither registered nor an ir-measures measure;
    the error suggests the closest names."""
    import difflib

    from retbench.errors import ConfigError
    from retbench.metrics.retrieval import parse_measures

    for name in names:
        if name in registries.metrics:
            continue
        try:
            parse_measures([name])
        except ConfigError:
            import ir_measures

            family, at, cutoff = name.partition("@")
            known = sorted({*registries.metrics.names(), *ir_measures.measures.registry})
            lowered = {k.lower(): k for k in known}
            close = [lowered[c] for c in difflib.get_close_matches(family.split("(")[0].lower(), lowered, n=3,
                                                                     cutoff=0.4)]
            guesses = [c if c in registries.metrics else c + at + cutoff for c in close]
            hint = f"; did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
            raise ConfigError(f"unknown metric '{name}'{hint} (registered: {', '.join(registries.metrics.names())}; "
                              "or any ir-measures measure such as nDCG@10, R@100, P@5)") from None


def metric_names(requested: Sequence[str] | None, split: DatasetSplit, registries: Registries, *,
                 retrieval: bool, answers: bool) -> list[str]:
    """What to compute: the requested names, else the dataset's defaults, else nDCG@10 & co.;
    with a reader, every registered answer metric is added when the dataset has answers."""
    names = list(requested or split.rules.metrics or (DEFAULT_MEASURES if retrieval else ()))
    if answers and split.answers:
        names += [e.name for e in registries.metrics if e.cls.level == "answer" and e.name not in names]
    return names


def score(names: Sequence[str], split: DatasetSplit, *, run: Run | None, answers: list[Answer] | None,
          registries: Registries, reader: Any = None, read_k: int = 5) -> Scores:
    """``reader`` / ``read_k`` go to metrics that declare ``uses_reader`` (retrieval utility)."""
    scores = Scores()
    measures = [n for n in names if n not in registries.metrics]
    if run is not None and measures and split.qrels:
        aggregate, rows = score_run(measures, split.qrels, run, split.rules)
        for name in aggregate:
            scores.add(name, {q: v[name] for q, v in rows.items()}, higher_is_better=True)
    produced: dict[str, list[str]] = {name: [name] for name in scores.metrics}
    for name in names:
        if name not in registries.metrics:
            continue
        metric: Any = registries.metrics.get(name)()
        if (metric.level == "answer" and answers is None) or (metric.level == "retrieval" and run is None):
            continue
        if getattr(metric, "uses_reader", False):
            result = metric.compute(split, run=run, answers=answers, reader=reader, read_k=read_k)
        else:
            result = metric.compute(split, run=run, answers=answers)
        produced[name] = []
        for sub_name, per_query in _split_values(metric.name, result).items():
            scores.add(sub_name, per_query, higher_is_better=bool(metric.higher_is_better))
            produced[name].append(sub_name)
    order = [sub for name in names for sub in produced.get(name, [])]
    scores.metrics = {sub: scores.metrics[sub] for sub in order}
    if split.query_types:
        _add_per_type(scores, split)
    return scores


def _split_values(name: str, result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A metric returns ``{qid: value}`` or, for several values, ``{qid: {name: value}}``."""
    if all(isinstance(v, dict) for v in result.values()) and result:
        names = dict.fromkeys(n for values in result.values() for n in values)
        return {n: {q: v[n] for q, v in result.items() if n in v} for n in names}
    return {name: {q: float(v) for q, v in result.items()}}


def _add_per_type(scores: Scores, split: DatasetSplit) -> None:
    """``EM [comparison]`` etc.: each metric's mean over the questions of one type."""
    for name in list(scores.metrics):
        by_type: dict[str, dict[str, float]] = {}
        for qid, values in scores.per_query.items():
            if name in values and qid in split.query_types:
                by_type.setdefault(split.query_types[qid], {})[qid] = values[name]
        for qtype, values in sorted(by_type.items()):
            scores.metrics[f"{name} [{qtype}]"] = sum(values.values()) / len(values)
            scores.higher_is_better[f"{name} [{qtype}]"] = scores.higher_is_better[name]
