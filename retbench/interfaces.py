"""The contracts every component kind fulfils (``typing.Protocol``, checked structurally).

Constructors store keyword parameters only; learned state lives in attributes ending in ``_``;
``get_params()`` feeds the cache key (see :class:`retbench.component.Component`). Methods take
their data positionally and everything else keyword-only. Optional methods are listed in each
docstring: the engine calls them when present. The engine checks every component it builds
against its kind's contract (:data:`CONTRACTS`), and so do the testing kit's checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypedDict, runtime_checkable

from retbench.data.types import (
    Answer,
    Corpus,
    DatasetSplit,
    Injection,
    Passage,
    Queries,
    Run,
)


@runtime_checkable
class Dataset(Protocol):
    """Loads splits of one benchmark. ``location`` (``--dataset name:LOCATION``) and
    ``data_dir`` (``--data-dir``) are the conventional constructor parameters.

    Optional: ``default_split`` (used when ``--split`` is not given; else ``test``),
    ``licence`` and ``source`` (shown by ``retbench datasets list``), ``cached_bytes(*, workdir)``
    (size of the downloaded copy), ``members()`` (names of datasets whose mean score is this
    one's, as CQADupStack's forums).
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        """Read (and on first use prepare into ``workdir``) one split."""
        ...


@runtime_checkable
class Retriever(Protocol):
    """Indexes a corpus and ranks its passages for queries.

    Optional: ``fit(train, *, negatives, workdir, seed)`` trains the retriever, saves it in
    ``workdir`` and may return a :class:`FitReport` (training data, loss curve) kept in the
    RunRecord;
    ``load_fit(*, workdir)`` restores what ``fit`` saved; ``load_index(*, workdir)`` restores
    what ``index`` saved, so a cached index is not rebuilt; ``default_negatives`` (class
    variable) names the negative sampler ``fit`` gets when ``--negatives`` is not given;
    ``fingerprint()`` returns what the parameters name but do not pin (the resolved model and
    its weights' revision), made part of every cache key and of the record.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...

    def index(self, corpus: Corpus, *, workdir: Path) -> None: ...

    def search(self, queries: Queries, *, k: int) -> Run: ...


@runtime_checkable
class Reranker(Protocol):
    """Re-scores the top candidates a retriever found for each query (a cross-encoder, a
    listwise LLM): returns ``{qid: {docid: score}}`` over the candidates it was given, higher
    is better. The run passes the top ``--rerank-k`` passages of each query, best first."""

    name: ClassVar[str]
    version: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...

    def rerank(self, queries: Queries, candidates: Mapping[str, Sequence[Passage]]) -> Run: ...


@runtime_checkable
class NegativeSampler(Protocol):
    """Picks negatives for a training batch of ``{"qid", "query", "positives"}`` items.

    ``retriever`` is the model being trained. Optional: ``prepare(items, *, corpus, retriever,
    hard_negatives, workdir)`` runs once before training (e.g. BM25 over all training queries);
    ``on_step(step, *, items, corpus, retriever)`` runs after every optimizer step and returns a
    log entry or None (ANCE refreshes its ANN index there); ``log`` lists those entries;
    ``generation_seconds_`` is the time a generator spent writing negatives (SyNeg), which a
    trainer reports as its :class:`FitReport`'s ``generation_seconds``.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def sample(
        self,
        batch: Sequence[Mapping[str, Any]],
        *,
        corpus: Corpus,
        retriever: Retriever | None,
        k: int,
        seed: int,
    ) -> list[list[str]]: ...


@runtime_checkable
class Generator(Protocol):
    """Writes text for readers and for the components that make training data.

    Optional, declared in ``capabilities`` (``retbench.PREFIX``, ``LOGLIKELIHOOD``, ``LORA``):
    ``generate(..., prefix=...)``, ``loglikelihood(contexts, continuations) -> list[float]``,
    LoRA injection; per-call ``temperature`` / ``top_p``.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        """One continuation per prompt. Generators may accept ``prefix=`` (the answer starts with
        that text; only what follows is returned), which JSON-writing plugins use to prefill."""
        ...


@runtime_checkable
class Augmenter(Protocol):
    """Produces training data (e.g. queries for passages, passage rewrites, QA pairs)."""

    name: ClassVar[str]
    version: ClassVar[str]

    def augment(
        self, corpus: Corpus, *, generator: Generator | None, workdir: Path
    ) -> list[dict[str, Any]]: ...


@runtime_checkable
class Injector(Protocol):
    """Turns the passages retrieved for a query into knowledge the reader can use.

    Optional: ``fit(train, *, retriever, reader, workdir, seed, inject_dir, k)`` trains on a
    split (DyPRAG's translator) and ``load_fit(*, workdir)`` restores it; ``needs_fit = True``
    when the injector cannot work untrained.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def prepare(
        self, passages: Sequence[Passage], *, reader: Reader, workdir: Path
    ) -> Injection:
        """``workdir`` persists across runs for this injector and reader (e.g. LoRA caches)."""
        ...


@runtime_checkable
class Reader(Protocol):
    """Answers questions given one Injection per question.

    Optional: ``injector`` (class variable naming the injector a shortcut reader uses by
    default); ``fit(train, *, retriever, workdir)`` trains on a split using the (trained,
    indexed) retriever and saves to ``workdir``; ``load_fit(*, workdir)`` restores it.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...

    def answer(
        self, queries: Queries, injections: Mapping[str, Injection]
    ) -> list[Answer]: ...


@runtime_checkable
class Metric(Protocol):
    """``level`` is ``retrieval``, ``answer``, ``cost`` or ``utility`` (opt-in, see docs/hooks.md). ``compute`` returns per-query
    scores ``{qid: value}``, or ``{qid: {name: value}}`` for several related values computed in
    one pass (``Top-1`` ... ``Top-100``); each reported value is the mean over its queries, and
    datasets with question types also get it per type (``EM [comparison]``)."""

    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_better: ClassVar[bool]
    level: ClassVar[str]

    def compute(
        self, split: DatasetSplit, *, run: Run | None, answers: Sequence[Answer] | None
    ) -> dict[str, float] | dict[str, dict[str, float]]: ...


class FitReport(TypedDict, total=False):
    """What ``fit`` returns. The engine checks the declared fields' types and the leaderboard
    reads only these; anything else a plugin reports is its own (nest it under a key of its
    own) and is kept in the record as it is."""

    #: seconds spent training, counting work reused from elsewhere (cached LoRAs, say)
    train_seconds: float
    #: seconds a generator spent inside ``fit`` writing training data (synthetic negatives)
    generation_seconds: float
    #: optimizer steps taken
    steps: int


#: the type each declared :class:`FitReport` field must have
FIT_REPORT_TYPES: dict[str, tuple[type, ...]] = {
    "train_seconds": (int, float), "generation_seconds": (int, float), "steps": (int,),
}


def fit_report_problems(report: object) -> list[str]:
    """Why ``report`` is not a :class:`FitReport` (empty when it is one)."""
    if not isinstance(report, Mapping):
        return [f"a {type(report).__name__}, expected a mapping or None"]
    return [f"field {field!r} is {type(report[field]).__name__}, expected "
            + " or ".join(t.__name__ for t in types)
            for field, types in FIT_REPORT_TYPES.items()
            if field in report and (isinstance(report[field], bool) or not isinstance(report[field], types))]


#: the contract of each registry kind, checked when the run builds a component
CONTRACTS: dict[str, type] = {
    "datasets": Dataset,
    "retrievers": Retriever,
    "rerankers": Reranker,
    "readers": Reader,
    "injectors": Injector,
    "negative_samplers": NegativeSampler,
    "augmenters": Augmenter,
    "generators": Generator,
    "metrics": Metric,
}


def contract_members(contract: type) -> list[str]:
    """The methods and class variables a Protocol requires."""
    methods = [n for n, v in vars(contract).items() if callable(v) and not n.startswith("_")]
    return sorted(set(methods) | set(getattr(contract, "__annotations__", {})))


def missing_members(kind: str, component: object) -> list[str]:
    """What ``component`` lacks of its kind's contract (empty when it fulfils it)."""
    contract = CONTRACTS.get(kind)
    return [] if contract is None else [m for m in contract_members(contract) if not hasattr(component, m)]
