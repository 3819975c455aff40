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


class ReturnsNothing(CountingRetriever):
    name = "returns-nothing"

    def search(self, queries, *, k):
        return {q: {} for q in queries}


def test_a_retriever_returning_nothing_fails_its_check():
    with pytest.raises(AssertionError, match="no documents for any query"):
        check_retriever(ReturnsNothing)


def _registered(kind: str, names: tuple[str, ...]) -> list[type]:
    from retbench.host.registry import collect_registries
    from retbench.testing import make_plugin_manager

    registries = collect_registries(make_plugin_manager())
    return [registries[kind].get(n) for n in names]


@parametrize_with_checks([*_registered("injectors", ("in-context",)), *_registered("metrics", ("EM", "F1", "RU"))])
def test_core_injectors_and_metrics_fulfil_their_contracts(component, check):
    check(component)


def test_every_component_kind_has_contract_checks():
    from retbench.host.registry import KINDS
    from retbench.testing.checks import CHECKS

    assert {k.rstrip("s") for k in KINDS} == set(CHECKS)


class CheatingSampler(retbench.Component):
    name = "cheat"
    version = "1"

    def __init__(self):
        pass

    def sample(self, batch, *, corpus, retriever, k, seed):
        return [item["positives"][:k] for item in batch]


class Mumbler(retbench.Component):
    name = "mumbler"
    version = "1"

    def __init__(self):
        pass

    def generate(self, prompts, *, max_new_tokens):
        return ["x"]

    def loglikelihood(self, contexts, continuations):
        return [0.0]


class BadItems(retbench.Component):
    name = "bad-items"
    version = "1"
    uses_generator = False

    def __init__(self):
        pass

    def augment(self, corpus, *, generator, workdir):
        return [{"qid": "a", "query": "q", "positives": ["nope"], "distractors": []}]


class NanMetric(retbench.Component):
    name = "nan-metric"
    version = "1"
    level = "answer"
    higher_is_better = True

    def __init__(self):
        pass

    def compute(self, split, *, run, answers):
        return {q: float("nan") for q in split.queries}


@pytest.mark.parametrize(("cls", "message"), [(CheatingSampler, "include a positive"),
                                              (Mumbler, "one str per prompt"),
                                              (BadItems, "names unknown passages"),
                                              (NanMetric, "finite")])
def test_checks_catch_broken_samplers_generators_augmenters_and_metrics(cls, message):
    from retbench.testing.checks import checks_for

    with pytest.raises(AssertionError, match=message):
        for check in checks_for(cls):
            check(cls)
