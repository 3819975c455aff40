"""Any folder in BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Follows BEIR's ``GenericDataLoader``: the split's queries are those its qrels judge (in order
of first appearance), judgments with score 0 are kept, ``title`` is optional. Beyond BEIR, an
optional ``answers.jsonl`` (``{"_id", "answers": [...], "type"?}``) gives gold answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retbench.engine.cache import directory_bytes
from retbench.component import Component
from retbench.data.prepare import prepare_corpus
from retbench.data.datasets.catalog import BEIR, CQADUPSTACK_FORUMS, BeirEntry
from retbench.data.download import DownloadError, extract, fetch
from retbench.errors import ConfigError, DataFormatError
from retbench.data.lines import iter_jsonl, iter_tsv, require_str
from retbench.data.types import Corpus, DatasetSplit, EvalRules, Qrels

READER_VERSION = "beir-jsonl-1"
QA_NAMESAKES = ("nq", "hotpotqa")


def read_corpus_rows(path: Path, digest: Any) -> Iterator[tuple[int, str, str, str, dict]]:
    for line, record in iter_jsonl(path, digest=digest):
        doc_id = require_str(record, "_id", path=path, line=line, numbers_ok=True)
        text = require_str(record, "text", path=path, line=line, allow_empty=True)
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise DataFormatError("expected a string", path=path, line=line, field="title")
        extra = record.get("metadata") or {}
        yield line, doc_id, title, text, extra if isinstance(extra, dict) else {"metadata": extra}


def load_corpus(path: Path, *, workdir: Path) -> Corpus:
    return prepare_corpus(
        path, lambda digest: read_corpus_rows(path, digest), workdir=workdir, reader=READER_VERSION
    )


def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line, record in iter_jsonl(path):
        qid = require_str(record, "_id", path=path, line=line, numbers_ok=True)
        if qid in queries:
            raise DataFormatError(f"duplicate query id '{qid}'", path=path, line=line, field="_id")
        queries[qid] = require_str(record, "text", path=path, line=line)
    return queries


def load_qrels(path: Path, *, queries: dict[str, str], corpus: Corpus, checked: Path | None = None) -> Qrels:
    """Read ``query-id, corpus-id, score`` rows; every id must exist in queries / corpus.

    The corpus check runs once per (corpus, judged documents): ``checked`` keeps a marker of
    each passed check, so a cached re-run neither repeats it nor imports what it needs
    (building an Arrow array from Python imports pandas, 0.3 s)."""
    qrels: Qrels = {}
    doc_lines: dict[str, int] = {}
    for line, fields in iter_tsv(path):
        if line == 1 and fields and fields[0] == "query-id":
            continue
        if len(fields) != 3:
            raise DataFormatError(
                f"expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}",
                path=path,
                line=line,
            )
        qid, doc_id, score = (f.strip() for f in fields)
        try:
            relevance = int(score)
        except ValueError:
            raise DataFormatError(
                f"score must be an integer, got '{score}'", path=path, line=line, field="score"
            ) from None
        if qid not in queries:
            raise DataFormatError(
                f"query '{qid}' is not in the queries file", path=path, line=line, field="query-id"
            )
        qrels.setdefault(qid, {})[doc_id] = relevance
        doc_lines.setdefault(doc_id, line)
    if not qrels:
        raise DataFormatError("no judgments found", path=path)
    marker = None
    if checked is not None:
        marker = checked / hashlib.sha256("\n".join([corpus.fingerprint, *sorted(doc_lines)]).encode()).hexdigest()
        if marker.is_file():
            return qrels
    _check_judged_documents(path, doc_lines, corpus)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:  # a read-only cache: checked again next time
            pass
    return qrels


def _check_judged_documents(path: Path, doc_lines: dict[str, int], corpus: Corpus) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    judged = pa.array(list(doc_lines), type=pa.string())
    missing = pc.invert(pc.is_in(judged, value_set=corpus.table.column("id")))
    if pc.any(missing).as_py():
        unknown = judged.filter(missing)[0].as_py()
        raise DataFormatError(
            f"document '{unknown}' is not in the corpus",
            path=path,
            line=doc_lines[unknown],
            field="corpus-id",
        )


def load_answers(path: Path, *, queries: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    answers: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    if not path.is_file():
        return answers, types
    for line, record in iter_jsonl(path):
        qid = require_str(record, "_id", path=path, line=line, numbers_ok=True)
        gold = record.get("answers")
        if not isinstance(gold, list) or not all(isinstance(a, str) for a in gold):
            raise DataFormatError(
                "expected a list of strings", path=path, line=line, field="answers"
            )
        if qid in queries:
            answers[qid] = gold
            if isinstance(record.get("type"), str):
                types[qid] = record["type"]
    return answers, types


def load_beir_split(
    folder: Path, split: str, *, workdir: Path, name: str, rules: EvalRules | None = None
) -> DatasetSplit:
    if not folder.is_dir():
        raise ConfigError(f"dataset folder not found: {folder}")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise ConfigError(
            f"{folder}: no qrels for split '{split}' (expected {qrels_path}; "
            f"splits found: {', '.join(have) or 'none'})"
        )
    corpus = load_corpus(folder / "corpus.jsonl", workdir=workdir)
    all_queries = load_queries(folder / "queries.jsonl")
    qrels = load_qrels(qrels_path, queries=all_queries, corpus=corpus, checked=workdir / "checked-qrels")
    queries = {qid: all_queries[qid] for qid in qrels}
    answers, types = load_answers(folder / "answers.jsonl", queries=queries)
    revision = hashlib.sha256(
        "|".join([corpus.fingerprint, *(f"{q}\t{t}" for q, t in queries.items())]).encode()
        + repr(sorted((q, sorted(d.items())) for q, d in qrels.items())).encode()
    ).hexdigest()[:16]
    return DatasetSplit(
        name=name,
        split=split,
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        answers=answers,
        query_types=types,
        revision=revision,
        rules=rules or EvalRules(),
    )


class BeirFolder(Component):
    """``--dataset beir:PATH``: any local folder in BEIR layout."""

    name = "beir"
    version = "1"
    licence = "the folder's own"

    def __init__(self, location: str | None = None, data_dir: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        if not self.location:
            raise ConfigError("dataset 'beir' needs a folder: --dataset beir:/path/to/folder")
        folder = Path(self.location)
        if not folder.is_absolute() and self.data_dir and not folder.exists():
            folder = Path(self.data_dir) / folder
        return load_beir_split(folder, split, workdir=workdir, name=folder.resolve().name)


class NamedBeirDataset(Component):
    """A BEIR dataset known by name: read from ``--data-dir``/<name>/ when given, else from
    the cache, downloading (checksum-verified) on first use."""

    name = ""
    version = "1"
    entry: BeirEntry

    def __init__(self, location: str | None = None, data_dir: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir

    def _base(self) -> str | None:
        """The user's folder, if any (``name:LOCATION`` or ``--data-dir``)."""
        return self.location or self.data_dir

    def folder(self, *, workdir: Path) -> Path:
        base = self._base()
        folder_name = self.entry.name
        if base:
            folder = Path(base)
            return folder / folder_name if (folder / folder_name).is_dir() else folder
        source = self.entry.source
        if source is None:
            raise ConfigError(f"dataset '{self.name}' has no public download ({self.entry.licence}): build it in "
                              f"BEIR layout and pass --data-dir DIR with DIR/{folder_name}/")
        target = workdir / "sources" / f"beir-{folder_name}"
        if not (target / folder_name).is_dir():
            try:
                extract(fetch(source, workdir / "downloads"), target)
            except DownloadError as exc:
                raise ConfigError(f"dataset '{self.name}': {exc} (or pass --data-dir DIR with DIR/{folder_name}/ "
                                  "in BEIR layout)") from None
        return target / folder_name

    @classmethod
    def cached_bytes(cls, *, workdir: Path) -> int | None:
        """Bytes of the downloaded copy under the cache (None when not downloaded)."""
        target = workdir / "sources" / f"beir-{cls.entry.name}"
        return directory_bytes(target) if target.is_dir() else None

    @property
    def default_split(self) -> str:
        return self.entry.eval_split

    def rules(self) -> EvalRules:
        notes = "self hits (document id = query id) removed" if self.entry.self_hits else ""
        return EvalRules(ignore_identical_ids=self.entry.self_hits, notes=notes)

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        return load_beir_split(self.folder(workdir=workdir), split, workdir=workdir,
                               name=self.name.replace("/", "-"), rules=self.rules())


class CqaDupStack(NamedBeirDataset):
    """CQADupStack: 12 StackExchange forums, each its own corpus. ``cqadupstack:<forum>`` runs
    one forum; plain ``cqadupstack`` runs all 12 and reports the mean of the forums' scores."""

    name = "cqadupstack"
    entry = BEIR["cqadupstack"]
    licence = entry.licence
    source = entry.source

    def members(self) -> list[str]:
        """The datasets whose mean is this one's score (empty when one forum is chosen)."""
        return [] if self.location else [f"cqadupstack:{forum}" for forum in CQADUPSTACK_FORUMS]

    def folder(self, *, workdir: Path) -> Path:
        forum = self.location
        if forum not in CQADUPSTACK_FORUMS:
            raise ConfigError(f"choose a CQADupStack forum as cqadupstack:<forum>, one of "
                              f"{', '.join(CQADUPSTACK_FORUMS)}")
        return super().folder(workdir=workdir) / forum

    def _base(self) -> str | None:
        return self.data_dir  # the location names the forum, not a folder

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        return load_beir_split(self.folder(workdir=workdir), split, workdir=workdir,
                               name=f"cqadupstack-{self.location}", rules=self.rules())


def named_beir_datasets() -> list[type]:
    """One registered class per catalog entry (CQADupStack has its own). The BEIR copies of
    NQ and HotpotQA are ``beir/nq`` and ``beir/hotpotqa``: ``nq`` and ``hotpotqa`` are the
    open-domain QA versions."""
    classes: list[type] = [CqaDupStack]
    for entry in BEIR.values():
        if entry.name == "cqadupstack":
            continue
        doc = (f"BEIR {entry.name}: {entry.documents:,} documents, {entry.queries:,} {entry.eval_split} queries; "
               f"{entry.licence}.")
        name = f"beir/{entry.name}" if entry.name in QA_NAMESAKES else entry.name
        classes.append(type(f"Beir_{entry.name.replace('-', '_')}", (NamedBeirDataset,),
                            {"name": name, "entry": entry, "licence": entry.licence, "source": entry.source,
                             "__doc__": doc}))
    return classes
