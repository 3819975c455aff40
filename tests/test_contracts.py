"""The testing kit's contract checks pass on the mocks and catch broken components."""

from __future__ import annotations

import pytest

import retbench
from retbench.testing import (
    CountingRetriever,
    EchoReader,
    MockDataset,
    OracleRetriever,
    ReverseRetriever,
    check_retriever,
    parametrize_with_checks,
)


@parametrize_with_checks([OracleRetriever, ReverseRetriever, CountingRetriever, EchoReader, MockDataset])
def test_mocks_fulfil_their_contracts(component, check):
    check(component)


class LearnsInInit(retbench.Component):
    name = "bad-init"
    version = "1"

    def __init__(self, k1: float = 1.0):
        self.k1 = k1
        self.vocab_ = {}

    def index(self, corpus, *, workdir):
        pass

    def search(self, queries, *, k):
        return {}


class TooManyHits(CountingRetriever):
    name = "too-many"

    def search(self, queries, *, k):
        return super().search(queries, k=k + 2)


class StringScores(CountingRetriever):
    name = "string-scores"

    def search(self, queries, *, k):
        return {q: {d: str(s) for d, s in docs.items()} for q, docs in super().search(queries, k=k).items()}


@pytest.mark.parametrize(
    ("cls", "message"),
    [(LearnsInInit, "sets learned attributes"), (TooManyHits, "for k=3"), (StringScores, "must be floats")],
)
def test_checks_catch_broken_retrievers(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_retriever(cls)
