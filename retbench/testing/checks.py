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
from retbench.in_context import InContext
from retbench.testing.mocks import MOCK_PASSAGES, mock_split
from retbench.data.types import Answer, DatasetSplit, Injection

Check = Callable[..., None]


def check_class_attributes(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """The class variables, and every member its kind's contract (``retbench/interfaces.py``) requires."""
    from retbench.interfaces import missing_members

    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__name__} needs a non-empty 'name' class variable"
    assert hasattr(cls, "version"), f"{cls.__name__} needs a 'version' class variable"
    kind = _kind(cls)
    registry = "negative_samplers" if kind == "negative_sampler" else f"{kind}s"
    missing = missing_members(registry, cls)
    assert not missing, f"{cls.__name__} lacks {', '.join(missing)} of the {kind} contract"


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
    answered = [qid for qid, docs in run.items() if docs]
    assert answered, "search returned no documents for any query of the mock corpus"


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


def check_reranker_rerank(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """rerank scores exactly the candidates of each query, with finite floats, deterministically."""
    from retbench.engine.accepted import checked_reranking

    split = mock_split()
    reranker = build(cls, dict(params or {}), kind=cls.__name__)
    candidates = {q: list(reversed(MOCK_PASSAGES)) for q in split.queries}
    run = reranker.rerank(split.queries, candidates)
    checked = checked_reranking(run, {q: [p.id for p in c] for q, c in candidates.items()}, who=cls.__name__)
    assert all(isinstance(s, float) for docs in run.values() for s in docs.values()), "scores must be floats"
    assert checked == reranker.rerank(split.queries, candidates), "rerank is not deterministic"


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


def check_injector_prepare(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """An Injection for some passages and for none, with a kind and a non-negative size."""
    from retbench.testing.mocks import EchoReader

    injector = build(cls, dict(params or {}), kind=cls.__name__)
    with tempfile.TemporaryDirectory() as workdir:
        for passages in (MOCK_PASSAGES[:2], []):
            injection = injector.prepare(list(passages), reader=EchoReader(), workdir=Path(workdir))
            assert isinstance(injection, Injection), f"prepare must return an Injection, got {type(injection)}"
            assert isinstance(injection.kind, str) and injection.kind, "Injection.kind must name the kind"
            assert isinstance(injection.nbytes, int) and injection.nbytes >= 0, "Injection.nbytes must be >= 0"


def check_negative_sampler_sample(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """One list of corpus ids per batch item, never its positives, at most k, deterministic."""
    split = mock_split("train")
    sampler = build(cls, dict(params or {}), kind=cls.__name__)
    batch = [{"qid": q, "query": split.queries[q], "positives": [d for d, r in split.qrels[q].items() if r > 0]}
             for q in split.queries]
    if hasattr(sampler, "prepare"):
        with tempfile.TemporaryDirectory() as workdir:
            sampler.prepare(batch, corpus=split.corpus, retriever=None, hard_negatives={}, workdir=Path(workdir))
    first = sampler.sample(batch, corpus=split.corpus, retriever=None, k=2, seed=0)
    again = sampler.sample(batch, corpus=split.corpus, retriever=None, k=2, seed=0)
    assert isinstance(first, list) and len(first) == len(batch), "sample must return one list per batch item"
    ids = {p.id for p in MOCK_PASSAGES}
    for item, negatives in zip(batch, first):
        named = [n.id if hasattr(n, "id") else n for n in negatives]
        assert len(named) <= 2, f"{len(named)} negatives for k=2"
        assert not set(named) & set(item["positives"]), f"negatives of {item['qid']} include a positive"
        assert all(n in ids or hasattr(m, "id") for n, m in zip(named, negatives)), "negatives not in the corpus"
    assert first == again, "sample is not deterministic for one seed"


def check_generator_generate(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """One string per prompt, deterministic; one finite float per loglikelihood pair."""
    import math

    generator = build(cls, dict(params or {}), kind=cls.__name__)
    prompts = ["The capital of France is", "Two plus two is"]
    out = generator.generate(prompts, max_new_tokens=4)
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(t, str) for t in out), (
        "generate must return one str per prompt")
    assert generator.generate(prompts, max_new_tokens=4) == out, "greedy generation is not deterministic"
    scores = generator.loglikelihood(["The capital of France is"], [" Paris"])
    assert len(scores) == 1 and math.isfinite(float(scores[0])), "loglikelihood must return one finite float per pair"


class _CannedGenerator:
    """What check_augmenter_augment hands an augmenter: answers every prompt with a question."""

    name = "canned"
    version = "1"

    def generate(self, prompts: Any, *, max_new_tokens: int = 32, **kwargs: Any) -> list[str]:
        return ["what is the capital of france?" for _ in prompts]

    def loglikelihood(self, contexts: Any, continuations: Any) -> list[float]:
        return [-float(len(c)) for c in continuations]


def check_augmenter_augment(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """Items ``{"qid", "query", "positives", "distractors"}`` naming corpus (or new) passages."""
    from retbench.engine.training_data import training_split

    split = mock_split()
    augmenter = build(cls, dict(params or {}), kind=cls.__name__)
    generator = _CannedGenerator() if getattr(augmenter, "uses_generator", True) else None
    with tempfile.TemporaryDirectory() as workdir:
        items = augmenter.augment(split.corpus, generator=generator, workdir=Path(workdir))
    assert isinstance(items, list), f"augment must return a list of dicts, got {type(items)}"
    ids = {p.id for p in MOCK_PASSAGES} | {p["id"] for i in items for p in i.get("new_passages", [])}
    for item in items:
        missing = {"qid", "query", "positives", "distractors"} - set(item)
        assert not missing, f"item {item.get('qid')!r} lacks {sorted(missing)}"
        assert set(item["positives"]) | set(item["distractors"]) <= ids, f"item {item['qid']!r} names unknown passages"
    assert len({i["qid"] for i in items}) == len(items), "item qids must be unique"
    training_split(items, split.corpus, name="mock", recipe=cls.name)  # usable as training data


def check_metric_compute(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """Per-query values for queries of the split, on the oracle run and the gold answers."""
    import math
    from types import SimpleNamespace

    from retbench.testing.mocks import MOCK_QRELS

    split = mock_split()
    metric = build(cls, dict(params or {}), kind=cls.__name__)
    assert metric.level in ("retrieval", "answer", "cost", "utility"), (
        f"level must be retrieval, answer, cost or utility: {metric.level!r}")
    assert isinstance(metric.higher_is_better, bool), "higher_is_better must be a bool"
    run = {q: {d: float(r) for d, r in docs.items()} for q, docs in MOCK_QRELS.items()}
    answers = [Answer(qid=q, text=a[0]) for q, a in split.answers.items()]
    if getattr(metric, "uses_reader", False):  # a reader that scores answers by how many passages it reads
        reader = SimpleNamespace(name="counting", answer_log_likelihood=lambda q, passages, gold: float(len(passages)))
        result = metric.compute(split, run=run, answers=answers, reader=reader, read_k=2)
    else:
        result = metric.compute(split, run=run, answers=answers)
    assert isinstance(result, dict) and result, "compute must return {qid: value} for some query"
    assert set(result) <= set(split.queries), f"values for unknown queries {set(result) - set(split.queries)}"
    for value in result.values():
        values = value.values() if isinstance(value, dict) else [value]
        assert all(math.isfinite(float(v)) for v in values), "metric values must be finite numbers"


CHECKS: dict[str, list[Check]] = {
    "retriever": [
        check_class_attributes,
        check_params_roundtrip,
        check_retriever_search,
        check_retriever_load_index,
    ],
    "reranker": [check_class_attributes, check_params_roundtrip, check_reranker_rerank],
    "reader": [check_class_attributes, check_params_roundtrip, check_reader_answer],
    "dataset": [check_class_attributes, check_params_roundtrip, check_dataset_load],
    "injector": [check_class_attributes, check_params_roundtrip, check_injector_prepare],
    "negative_sampler": [check_class_attributes, check_params_roundtrip, check_negative_sampler_sample],
    "generator": [check_class_attributes, check_params_roundtrip, check_generator_generate],
    "augmenter": [check_class_attributes, check_params_roundtrip, check_augmenter_augment],
    "metric": [check_class_attributes, check_params_roundtrip, check_metric_compute],
}
# The method that tells a kind; samplers and retrievers may have ``prepare`` / ``load`` too.
_METHODS = {"search": "retriever", "rerank": "reranker", "answer": "reader", "sample": "negative_sampler", "generate": "generator",
            "augment": "augmenter", "compute": "metric", "prepare": "injector", "load": "dataset"}


def _kind(cls: type) -> str:
    for method, kind in _METHODS.items():
        if callable(getattr(cls, method, None)):
            return kind
    raise TypeError(f"no contract checks for {cls!r}")


def checks_for(cls: type) -> list[Check]:
    return CHECKS[_kind(cls)]


def _run_checks(kind: str, cls: type, params: Mapping[str, Any] | None) -> None:
    assert _kind(cls) == kind, f"{cls.__name__} is not a {kind} (it looks like a {_kind(cls)})"
    for check in CHECKS[kind]:
        check(cls, params)


def check_retriever(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("retriever", cls, params)


def check_reranker(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("reranker", cls, params)


def check_reader(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("reader", cls, params)


def check_dataset(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("dataset", cls, params)


def check_injector(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("injector", cls, params)


def check_negative_sampler(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("negative_sampler", cls, params)


def check_generator(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("generator", cls, params)


def check_augmenter(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("augmenter", cls, params)


def check_metric(cls: type, params: Mapping[str, Any] | None = None) -> None:
    _run_checks("metric", cls, params)


def parametrize_with_checks(classes: Iterable[type]) -> Any:
    """A ``pytest.mark.parametrize`` over every (class, check) pair."""
    import pytest

    pairs = [(cls, check) for cls in classes for check in checks_for(cls)]
    ids = [f"{cls.__name__}-{check.__name__}" for cls, check in pairs]
    return pytest.mark.parametrize(("component", "check"), pairs, ids=ids)
