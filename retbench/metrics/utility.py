"""Retrieval utility (REALM, Guu et al. 2020, section 4.4 / Table 5):
RU(z) = log p(y | z, x) - log p(y | empty, x), how much the passages z raise the reader's
log-likelihood of the gold answer y over reading no passage at all.

Opt-in (``--metrics RU``): it costs extra reader passes, so it is not added to every run. It
needs a reader that can score an answer, through one duck-typed method (docs/hooks.md)::

    answer_log_likelihood(question: str, passages: Sequence[Passage], answers: Sequence[str]) -> float

returning log p(y | passages, x), with ``passages`` empty for the closed-book case and ``y`` any
of the gold answers (the reader sums their probabilities). ``RU@1`` uses the top-ranked
passage, ``RU@k`` the top ``read_k`` passages the reader reads; questions without a gold answer
or without a retrieved passage are left out. Controls in the same run: ``RU@1-answer`` /
``RU@1-noanswer`` average RU@1 over the questions whose top passage does / does not contain a
gold answer (normalised text), and ``RU@1-random`` is RU of one corpus passage drawn at random
per question (seeded by the question id), which should be near zero.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from retbench.component import Component
from retbench.errors import ConfigError
from retbench.metrics.answer import normalize_answer
from retbench.data.types import Answer, DatasetSplit, Run


class RetrievalUtility(Component):
    name = "RU"
    version = "1"
    higher_is_better = True
    level = "utility"
    uses_reader = True

    def compute(self, split: DatasetSplit, *, run: Run | None, answers: Sequence[Answer] | None,
                reader: Any = None, read_k: int = 5) -> dict[str, dict[str, float]]:
        if reader is None:
            raise ConfigError("metric RU: needs a reader that can score an answer (--reader rag --generator hf)")
        scorer = getattr(reader, "answer_log_likelihood", None)
        if scorer is None:
            raise ConfigError(f"metric RU: reader '{getattr(reader, 'name', reader)}' cannot score an answer "
                              "(it has no answer_log_likelihood; see docs/hooks.md)")
        if run is None:
            raise ConfigError("metric RU: needs a retriever (--retriever)")
        values: dict[str, dict[str, float]] = {}
        ids = split.corpus.ids
        for qid, question in split.queries.items():
            gold = [a for a in split.answers.get(qid, []) if a.strip()]
            ranked = sorted(run.get(qid, {}).items(), key=lambda x: -x[1])[:read_k]
            if not gold or not ranked:
                continue
            passages = split.corpus.get([d for d, _ in ranked])
            base = scorer(question, [], gold)
            top1 = scorer(question, passages[:1], gold) - base
            bearing = any(normalize_answer(a) in normalize_answer(passages[0].contents()) for a in gold)
            drawn = split.corpus.get([ids[zlib.crc32(qid.encode()) % len(ids)]])
            values[qid] = {"RU@1": top1, f"RU@{read_k}": scorer(question, passages, gold) - base,
                           "RU@1-answer" if bearing else "RU@1-noanswer": top1,
                           "RU@1-random": scorer(question, drawn, gold) - base}
        return values
