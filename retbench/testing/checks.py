"""Contract checks for plugin authors, in the spirit of scikit-learn's estimator checks.

Use them directly (``check_retriever(MyRetriever)``) or parametrised::

    from retbench.testing import parametrize_with_checks

    @parametrize_with_checks([MyRetriever])
    def test_contract(component, check):
        check(component)

Each check takes a class (default-constructible, or pass ``params``) and raises
``AssertionError`` with a message saying what is wrong.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from retbench.component import build, constructor_parameters, params_of
from retbench.injection import InContext
from retbench.testing.mocks import MOCK_PASSAGES, mock_split
from retbench.types import Answer, DatasetSplit, Injection

Check = Callable[..., None]


def check_class_attributes(cls: type, params: Mapping[str, Any] | None = None) -> None:
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__name__} needs a non-empty 'name' class variable"
    assert hasattr(cls, "version"), f"{cls.__name__} needs a 'version' class variable"


def check_params_roundtrip(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """The constructor only stores its parameters; ``get_params`` gives them back."""
    instance = build(cls, dict(params or {}), kind=cls.__name__)
    got = params_of(instance)
    assert set(got) == set(constructor_parameters(cls)), (
        f"{cls.__name__}.get_params() returned {sorted(got)}, expected the constructor "
        f"parameters {constructor_parameters(cls)}"
    )
    clone = build(cls, got, kind=cls.__name__)
    assert params_of(clone) == got, f"{cls.__name__}(**get_params()) changes its parameters"
    learned = [a for a in vars(instance) if a.endswith("_") and not a.startswith("_")]
    assert not learned, f"{cls.__name__}.__init__ sets learned attributes {learned}"


def check_retriever_search(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """index + search on the mock corpus returns a well-formed, deterministic run."""
    split = mock_split()
    retriever = build(cls, dict(params or {}), kind=cls.__name__)
    with tempfile.TemporaryDirectory() as workdir:
        retriever.index(split.corpus, workdir=Path(workdir))
        run = retriever.search(split.queries, k=3)
        again = retriever.search(split.queries, k=3)
    ids = {p.id for p in MOCK_PASSAGES}
    assert isinstance(run, dict), f"search must return {{qid: {{docid: score}}}}, got {type(run)}"
    assert set(run) <= set(split.queries), f"run has unknown query ids {set(run) - set(split.queries)}"
    for qid, docs in run.items():
        assert isinstance(docs, dict), f"run[{qid!r}] must be a dict of docid -> score"
        assert len(docs) <= 3, f"run[{qid!r}] has {len(docs)} documents for k=3"
        assert set(docs) <= ids, f"run[{qid!r}] has documents not in the corpus: {set(docs) - ids}"
        assert all(isinstance(s, float) for s in docs.values()), f"run[{qid!r}] scores must be floats"
    assert run == again, "search is not deterministic"


def check_retriever_load_index(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """When ``load_index`` exists, a restored index searches like the original."""
    if not hasattr(cls, "load_index"):
        return
    split = mock_split()
    first = build(cls, dict(params or {}), kind=cls.__name__)
    second = build(cls, dict(params or {}), kind=cls.__name__)
    with tempfile.TemporaryDirectory() as workdir:
        first.index(split.corpus, workdir=Path(workdir))
        second.load_index(workdir=Path(workdir))
        assert first.search(split.queries, k=3) == second.search(split.queries, k=3), (
            "a retriever restored with load_index ranks differently from the one that indexed"
        )


def check_reader_answer(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """One Answer per query, with matching ids and string text."""
    split: DatasetSplit = mock_split()
    reader = build(cls, dict(params or {}), kind=cls.__name__)
    injector = InContext()
    with tempfile.TemporaryDirectory() as workdir:
        injections: dict[str, Injection] = {
            qid: injector.prepare(split.corpus.get([d]), reader=reader, workdir=Path(workdir))
            for qid, docs in split.qrels.items()
            for d in list(docs)[:1]
        }
    answers = reader.answer(split.queries, injections)
    assert all(isinstance(a, Answer) for a in answers), "answer must return a list of Answer"
    assert [a.qid for a in answers] == list(split.queries), "one Answer per query, in order"
    assert all(isinstance(a.text, str) for a in answers), "Answer.text must be a string"


def check_dataset_load(cls: type, params: Mapping[str, Any] | None = None) -> None:
    dataset = build(cls, dict(params or {}), kind=cls.__name__)
    with tempfile.TemporaryDirectory() as workdir:
        split = dataset.load("test", workdir=Path(workdir))
        assert isinstance(split, DatasetSplit), "load must return a DatasetSplit"
        assert len(split.corpus) > 0, "the corpus is empty"
        corpus_ids = set(split.corpus.ids)
        for qid, docs in split.qrels.items():
            assert qid in split.queries, f"qrels name unknown query {qid!r}"
            assert set(docs) <= corpus_ids, f"qrels of {qid!r} name unknown documents"


CHECKS: dict[str, list[Check]] = {
    "retriever": [
        check_class_attributes,
        check_params_roundtrip,
        check_retriever_search,
        check_retriever_load_index,
    ],
    "reader": [check_class_attributes, check_params_roundtrip, check_reader_answer],
    "dataset": [check_class_attributes, check_params_roundtrip, check_dataset_load],
}


def _kind(cls: type) -> str:
    if hasattr(cls, "search"):
        return "retriever"
    if hasattr(cls, "answer"):
        return "reader"
    if hasattr(cls, "load"):
        return "dataset"
    raise TypeError(f"no contract checks for {cls!r}")


def checks_for(cls: type) -> list[Check]:
    return CHECKS[_kind(cls)]


def _run_checks(kind: str, cls: type, params: Mapping[str, Any] | None) -> None:
    assert _kind(cls) == kind, f"{cls.__name__} is not a {kind} (it looks like a {_kind(cls)})"
    for check in CHECKS[kind]:
        check(cls, params)


def check_retriever(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("retriever", cls, params)


def check_reader(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("reader", cls, params)


def check_dataset(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("dataset", cls, params)


def parametrize_with_checks(classes: Iterable[type]) -> Any:
    """A ``pytest.mark.parametrize`` over every (class, check) pair."""
    import pytest

    pairs = [(cls, check) for cls in classes for check in checks_for(cls)]
    ids = [f"{cls.__name__}-{check.__name__}" for cls, check in pairs]
    return pytest.mark.parametrize(("component", "check"), pairs, ids=ids)
