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

from retbench.component import Component
from retbench.corpus import prepare_corpus
from retbench.errors import ConfigError, DataFormatError
from retbench.io import iter_jsonl, iter_tsv, require_str
from retbench.types import Corpus, DatasetSplit, EvalRules, Qrels

READER_VERSION = "beir-jsonl-1"


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


def load_qrels(path: Path, *, queries: dict[str, str], corpus: Corpus) -> Qrels:
    """Read ``query-id, corpus-id, score`` rows; every id must exist in queries / corpus."""
    import pyarrow as pa
    import pyarrow.compute as pc

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
    return qrels


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
    qrels = load_qrels(qrels_path, queries=all_queries, corpus=corpus)
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
    """A BEIR dataset known by name, read from ``--data-dir``/<folder>."""

    name = ""
    version = "1"
    folder = ""
    rules = EvalRules()

    def __init__(self, location: str | None = None, data_dir: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        base = self.location or self.data_dir
        if not base:
            raise ConfigError(
                f"dataset '{self.name}' is not on disk: pass --data-dir DIR where DIR/"
                f"{self.folder}/ is the BEIR folder (or --dataset beir:/path/to/{self.folder})"
            )
        folder = Path(base)
        if (folder / self.folder).is_dir():
            folder = folder / self.folder
        return load_beir_split(folder, split, workdir=workdir, name=self.name, rules=self.rules)


class SciFact(NamedBeirDataset):
    """BEIR SciFact (5,183 abstracts, 300 test claims), read from --data-dir/scifact."""

    name = "scifact"
    folder = "scifact"
