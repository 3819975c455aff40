"""Mock components for tests: a tiny dataset, oracle / reverse / counting retrievers, a
word-overlap reranker, an echo reader. ``MockPlugin`` registers them all; register it on a fresh plugin manager."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from retbench import hookimpl
from retbench.component import Component
from retbench.host.hookspecs import Register
from retbench.data.types import (
    Answer,
    Corpus,
    DatasetSplit,
    Injection,
    Passage,
    Qrels,
    Queries,
    Run,
)

MOCK_PASSAGES = [
    Passage("d1", "Paris is the capital of France.", "France"),
    Passage("d2", "Berlin is the capital of Germany.", "Germany"),
    Passage("d3", "Madrid is the capital of Spain.", "Spain"),
    Passage("d4", "The Danube flows through Vienna and Budapest.", "Danube"),
    Passage("d5", "Mount Everest is the highest mountain on Earth.", "Everest"),
    Passage("d6", "The Nile is a long river in Africa.", "Nile"),
]
MOCK_QUERIES = {
    "q1": "capital of France",
    "q2": "capital of Germany",
    "q3": "highest mountain on Earth",
    "q4": "river through Vienna",
}
MOCK_QRELS: Qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d5": 2, "d6": 0}, "q4": {"d4": 1}}
MOCK_ANSWERS = {
    "q1": ["Paris is the capital of France."],
    "q2": ["Berlin"],
    "q3": ["Mount Everest is the highest mountain on Earth."],
    "q4": ["Vienna"],
}


def mock_split(split: str = "test") -> DatasetSplit:
    return DatasetSplit(
        name="mock",
        split=split,
        corpus=Corpus.from_passages(MOCK_PASSAGES),
        queries=dict(MOCK_QUERIES),
        qrels={q: dict(d) for q, d in MOCK_QRELS.items()},
        answers={q: list(a) for q, a in MOCK_ANSWERS.items()},
        revision="mock-1",
    )


class MockDataset(Component):
    name = "mock"
    version = "1"

    def __init__(self) -> None:
        pass

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        return mock_split(split)


class OracleRetriever(Component):
    """Returns the judged-relevant documents first: the upper bound."""

    name = "oracle"
    version = "1"

    def __init__(self, qrels: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.qrels = qrels

    def index(self, corpus: Corpus, *, workdir: Path) -> None:
        self.ids_ = corpus.ids

    def search(self, queries: Queries, *, k: int) -> Run:
        qrels = self.qrels if self.qrels is not None else MOCK_QRELS
        run: Run = {}
        for qid in queries:
            judged = sorted(qrels.get(qid, {}).items(), key=lambda x: -x[1])
            ranked = [d for d, rel in judged if rel > 0] + [
                d for d in self.ids_ if qrels.get(qid, {}).get(d, 0) <= 0
            ]
            run[qid] = {d: float(len(ranked) - i) for i, d in enumerate(ranked[:k])}
        return run


class ReverseRetriever(Component):
    """Ranks documents by descending id, ignoring the query: a floor to compare against."""

    name = "reverse"
    version = "1"

    def __init__(self) -> None:
        pass

    def index(self, corpus: Corpus, *, workdir: Path) -> None:
        self.ids_ = sorted(corpus.ids, reverse=True)

    def search(self, queries: Queries, *, k: int) -> Run:
        return {q: {d: float(-i) for i, d in enumerate(self.ids_[:k])} for q in queries}


class OverlapReranker(Component):
    """Scores each candidate by the words it shares with the query (title and text), ties by
    the retriever's order; counts the pairs it scored (class-wide), so tests can prove caching."""

    name = "overlap"
    version = "1"
    pairs: ClassVar[Counter] = Counter()

    def __init__(self) -> None:
        pass

    def rerank(self, queries: Queries, candidates: Mapping[str, Sequence[Passage]]) -> Run:
        out: Run = {}
        for qid, passages in candidates.items():
            words = set(queries[qid].lower().split())
            OverlapReranker.pairs["scored"] += len(passages)
            out[qid] = {p.id: len(words & set(p.contents(" ").lower().split())) - i / (len(passages) + 1)
                        for i, p in enumerate(passages)}
        return out


class CountingRetriever(Component):
    """Word-overlap ranking that counts its calls (class-wide), so tests can prove caching.

    The index is saved to ``workdir`` and restored by ``load_index``; ``fit`` learns nothing
    but records how many training queries it saw.
    """

    name = "counting"
    version = "1"
    calls: ClassVar[Counter] = Counter()

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase

    def _terms(self, text: str) -> set[str]:
        return set((text.lower() if self.lowercase else text).replace(".", " ").split())

    def fit(self, train: DatasetSplit, *, negatives: Any, workdir: Path, seed: int = 0) -> None:
        self.calls["fit"] += 1
        self.trained_on_ = len(train.queries)
        (workdir / "fit.json").write_text(json.dumps({"queries": self.trained_on_}))

    def load_fit(self, *, workdir: Path) -> None:
        self.calls["load_fit"] += 1
        self.trained_on_ = json.loads((workdir / "fit.json").read_text())["queries"]

    def index(self, corpus: Corpus, *, workdir: Path) -> None:
        self.calls["index"] += 1
        self.docs_ = {p.id: sorted(self._terms(p.contents())) for p in corpus}
        (workdir / "index.json").write_text(json.dumps(self.docs_))

    def load_index(self, *, workdir: Path) -> None:
        self.calls["load_index"] += 1
        self.docs_ = json.loads((workdir / "index.json").read_text())

    def search(self, queries: Queries, *, k: int) -> Run:
        self.calls["search"] += 1
        run: Run = {}
        for qid, text in queries.items():
            terms = self._terms(text)
            scored = sorted(
                ((d, float(len(terms & set(t)))) for d, t in self.docs_.items()),
                key=lambda x: (-x[1], x[0]),
            )
            run[qid] = dict(scored[:k])
        return run


class EchoReader(Component):
    """Answers with the text of the first passage it is given (or the empty string)."""

    name = "echo"
    version = "1"

    def __init__(self, k: int = 1) -> None:
        self.k = k

    def answer(self, queries: Queries, injections: Mapping[str, Injection]) -> list[Answer]:
        answers = []
        for qid in queries:
            passages = injections[qid].passages
            answers.append(Answer(qid=qid, text=passages[0].text if passages else ""))
        return answers


class MockPlugin:
    """Registers every mock component; ``pm.register(MockPlugin(), name="mocks")``."""

    @hookimpl
    def retbench_register_datasets(self, register: Register) -> None:
        register(MockDataset)

    @hookimpl
    def retbench_register_retrievers(self, register: Register) -> None:
        register(OracleRetriever)
        register(ReverseRetriever)
        register(CountingRetriever)

    @hookimpl
    def retbench_register_rerankers(self, register: Register) -> None:
        register(OverlapReranker)

    @hookimpl
    def retbench_register_readers(self, register: Register) -> None:
        register(EchoReader)
