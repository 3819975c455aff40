"""Data types shared by the core and every plugin.

At the boundaries retbench uses the shapes the field shares (BEIR, ir_measures, pytrec_eval):
qrels ``{qid: {docid: int}}`` and runs ``{qid: {docid: float}}``. A corpus is an Arrow table
(``id``, ``title``, ``text``, ``extra``) that is memory-mapped once prepared, so large corpora
never live in Python dicts. pyarrow is imported inside methods to keep this module cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]
Queries = Mapping[str, str]

CORPUS_COLUMNS = ("id", "title", "text", "extra")


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    title: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def contents(self, sep: str = " ") -> str:
        """Title and text joined, the usual 'title+text' field of BEIR runs."""
        return f"{self.title}{sep}{self.text}" if self.title else self.text


class Corpus:
    """A read-only passage collection backed by an Arrow table."""

    def __init__(self, table: pa.Table, *, fingerprint: str, path: Path | None = None) -> None:
        self.table = table
        self.fingerprint = fingerprint
        self.path = path  # the memory-mapped Arrow file, when opened from one
        self._row_of: dict[str, int] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """A memory-mapped corpus crosses process boundaries (worker processes, Ray actors) as
        its file's path, opened again on the other side; an in-memory one as its table."""
        if self.path is not None:
            return _open_corpus, (str(self.path), self.fingerprint)
        return _corpus_of_table, (self.table, self.fingerprint)

    @classmethod
    def from_passages(cls, passages: Iterable[Passage]) -> Corpus:
        """Build an in-memory corpus (tests, small generated corpora)."""
        import pyarrow as pa

        rows = list(passages)
        digest = hashlib.sha256()
        for p in rows:
            digest.update(json.dumps([p.id, p.title, p.text], ensure_ascii=False).encode())
        table = pa.table(
            {
                "id": [p.id for p in rows],
                "title": [p.title for p in rows],
                "text": [p.text for p in rows],
                "extra": [json.dumps(dict(p.extra), ensure_ascii=False) for p in rows],
            }
        )
        return cls(table, fingerprint=digest.hexdigest())

    @classmethod
    def open(cls, path: str | Path, *, fingerprint: str) -> Corpus:
        """Memory-map a corpus written by :func:`retbench.data.prepare.prepare_corpus`."""
        import pyarrow as pa

        source = pa.memory_map(str(path), "r")
        return cls(pa.ipc.open_file(source).read_all(), fingerprint=fingerprint, path=Path(path))

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def ids(self) -> list[str]:
        return self.table.column("id").to_pylist()

    def iter_batches(self, batch_size: int = 4096) -> Iterator[list[Passage]]:
        for batch in self.table.to_batches(max_chunksize=batch_size):
            yield _passages(batch.to_pydict())

    def slice(self, start: int, stop: int) -> list[Passage]:
        """Passages at rows ``start`` to ``stop`` (exclusive), in corpus order."""
        return _passages(self.table.slice(start, max(0, stop - start)).to_pydict())

    def __iter__(self) -> Iterator[Passage]:
        for batch in self.iter_batches():
            yield from batch

    def _rows(self) -> dict[str, int]:
        if self._row_of is None:  # built on first use
            self._row_of = {doc_id: row for row, doc_id in enumerate(self.ids)}
        return self._row_of

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows()

    def get(self, ids: Sequence[str]) -> list[Passage]:
        """Look passages up by id (the index is built on first use)."""
        self._rows()
        rows = [self._row_of[doc_id] for doc_id in ids]
        return _passages(self.table.take(rows).to_pydict())


def _open_corpus(path: str, fingerprint: str) -> Corpus:
    return Corpus.open(path, fingerprint=fingerprint)


def _corpus_of_table(table: pa.Table, fingerprint: str) -> Corpus:
    return Corpus(table, fingerprint=fingerprint)


def _passages(columns: dict[str, list[str]]) -> list[Passage]:
    """Passages from the columns of an Arrow slice (``extra`` is stored as JSON text)."""
    return [
        Passage(id=i, title=t, text=x, extra=json.loads(e) if e and e != "{}" else {})
        for i, t, x, e in zip(columns["id"], columns["title"], columns["text"], columns["extra"])
    ]


@dataclass
class EvalRules:
    """How a dataset is scored; recorded verbatim in every RunRecord."""

    ignore_identical_ids: bool = False
    relevance_level: int = 1
    metrics: list[str] = field(default_factory=list)
    answer_match: str = "string"
    averaging: str = (
        "mean over queries with at least one judged-relevant document; "
        "a query with no retrieved documents scores 0 (trec_eval -c)"
    )
    notes: str = ""
    yes_no_strict: bool = False  # answer F1: a yes/no/noanswer mismatch scores 0 (multi-hop QA)


@dataclass
class DatasetSplit:
    """One split of a dataset, as a loader returns it."""

    name: str
    split: str
    corpus: Corpus
    queries: dict[str, str]
    qrels: Qrels = field(default_factory=dict)
    answers: dict[str, list[str]] = field(default_factory=dict)
    query_types: dict[str, str] = field(default_factory=dict)
    hard_negatives: dict[str, list[str]] = field(default_factory=dict)
    revision: str = ""
    citation: str = ""
    rules: EvalRules = field(default_factory=EvalRules)

    def subset(
        self,
        *,
        limit: int | None = None,
        sample: int | None = None,
        per_type: int | None = None,
        seed: int = 0,
    ) -> tuple[DatasetSplit, str]:
        """Keep some of the queries (with their qrels and answers) and describe the rule used.

        ``per_type``: the first N questions of each type (the PRAG papers use 300);
        ``sample``: N questions drawn with ``seed`` (kept in file order); ``limit``: the first N.
        Applied in that order.
        """
        import random

        keep = list(self.queries)
        rules = []
        if per_type is not None:
            seen: dict[str, int] = {}
            chosen = []
            for qid in keep:
                qtype = self.query_types.get(qid, "")
                if seen.get(qtype, 0) < per_type:
                    seen[qtype] = seen.get(qtype, 0) + 1
                    chosen.append(qid)
            keep = chosen
            rules.append(f"first {per_type} per question type")
        if sample is not None and sample < len(keep):
            picked = set(random.Random(seed).sample(keep, sample))
            keep = [q for q in keep if q in picked]
            rules.append(f"{sample} sampled with seed {seed}")
        if limit is not None and limit < len(keep):
            keep = keep[:limit]
            rules.append(f"first {limit} in file order")
        if not rules:
            return self, "all"
        return self.select(keep), "; ".join(rules)

    def select(self, qids: Sequence[str], *, split: str | None = None) -> DatasetSplit:
        """The same split restricted to ``qids`` (corpus unchanged), optionally renamed."""
        kept = set(qids)
        keep = [q for q in self.queries if q in kept]
        return DatasetSplit(
            name=self.name,
            split=split or self.split,
            corpus=self.corpus,
            queries={q: self.queries[q] for q in keep},
            qrels={q: r for q, r in self.qrels.items() if q in kept},
            answers={q: a for q, a in self.answers.items() if q in kept},
            query_types={q: t for q, t in self.query_types.items() if q in kept},
            hard_negatives={q: n for q, n in self.hard_negatives.items() if q in kept},
            revision=self.revision,
            citation=self.citation,
            rules=self.rules,
        )


@dataclass
class Answer:
    qid: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoraWeights:
    """Low-rank updates of named linear modules: ``W += scaling * B @ A`` for each
    ``name: (A, B)`` (A is rank x in, B is out x rank; tensors of any array library)."""

    factors: dict[str, tuple[Any, Any]]
    scaling: float


@dataclass
class Injection:
    """Knowledge prepared for one query: passages in the prompt, parameters (``payload``,
    e.g. a list of LoraWeights merged for that question), or both.

    ``cost`` reports what preparing it took: ``online_seconds`` ({step: seconds} spent for this
    question) and ``artefacts`` ({passage id: {"offline_seconds", "bytes"}} for per-passage
    artefacts, counted once per passage across questions)."""

    kind: str
    passages: list[Passage] = field(default_factory=list)
    payload: Any = None
    nbytes: int = 0
    cost: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """Everything needed to read, compare and reproduce one run."""

    run_id: str
    command: str
    config: dict[str, Any]
    components: dict[str, dict[str, Any]]
    dataset: dict[str, Any]
    metrics: dict[str, float]
    cost: dict[str, Any]
    stages: dict[str, dict[str, Any]]
    environment: dict[str, Any]
    created: str
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: int = 1

    def to_dict(self, *, with_per_query: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_per_query:
            data.pop("per_query")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def cached(self) -> bool:
        """True when no stage had to do any work."""
        return bool(self.stages) and all(s.get("cached") for s in self.stages.values())
