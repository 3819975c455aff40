"""MIRACL (18 languages) in its own layout, chosen as ``miracl:<lang>``:

``<data_dir>/miracl/miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-<split>.tsv``
(``qid<TAB>query``), ``.../qrels/qrels.miracl-v1.0-<lang>-<split>.tsv`` (``qid Q0 docid rel``),
and the corpus ``<data_dir>/miracl/miracl-corpus-v1.0-<lang>/*.jsonl[.gz]`` (``docid``, ``title``,
``text``). Scored by nDCG@10 and R@100. Text is read as UTF-8 and kept as written (no case
folding or normalisation here), so every script survives loading unchanged.
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
from retbench.types import Corpus, DatasetSplit, EvalRules

LANGUAGES = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th",
             "yo", "zh")


def load_topics(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for line, fields in iter_tsv(path):
        if len(fields) != 2:
            raise DataFormatError(f"expected qid<TAB>query, got {len(fields)} fields", path=path, line=line)
        topics[fields[0]] = fields[1]
    return topics


def load_trec_qrels(path: Path, *, queries: dict[str, str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line, fields in iter_tsv(path):
        parts = fields[0].split() if len(fields) == 1 else fields
        if len(parts) != 4:
            raise DataFormatError("expected 'qid Q0 docid relevance'", path=path, line=line)
        qid, _, doc_id, rel = parts
        if qid not in queries:
            raise DataFormatError(f"query '{qid}' is not in the topics", path=path, line=line, field="qid")
        try:
            qrels.setdefault(qid, {})[doc_id] = int(rel)
        except ValueError:
            raise DataFormatError(f"relevance must be an integer, got '{rel}'", path=path, line=line,
                                  field="relevance") from None
    return qrels


def _corpus_rows(files: list[Path], digest: Any) -> Iterator[tuple[int, str, str, str, dict]]:
    for path in files:
        for line, record in iter_jsonl(path, digest=digest):
            doc_id = require_str(record, "docid", path=path, line=line)
            yield line, doc_id, record.get("title") or "", require_str(record, "text", path=path, line=line,
                                                                        allow_empty=True), {}


class Miracl(Component):
    """MIRACL v1.0: multilingual Wikipedia retrieval; ``--dataset miracl:sw``."""

    name = "miracl"
    version = "1"
    licence = "Apache-2.0 (topics, judgments); corpus CC BY-SA (Wikipedia)"
    default_split = "dev"

    def __init__(self, location: str | None = None, data_dir: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        lang = self.location
        if lang not in LANGUAGES:
            raise ConfigError(f"choose a MIRACL language as miracl:<lang>, one of {', '.join(LANGUAGES)}"
                              + (f" (got '{lang}')" if lang else ""))
        if not self.data_dir:
            raise ConfigError(f"MIRACL is not on disk: pass --data-dir DIR with DIR/miracl/miracl-v1.0-{lang}/")
        base = Path(self.data_dir)
        base = base / "miracl" if (base / "miracl").is_dir() else base
        folder = base / f"miracl-v1.0-{lang}"
        stem = f"miracl-v1.0-{lang}-{split}.tsv"
        topics_path, qrels_path = folder / "topics" / f"topics.{stem}", folder / "qrels" / f"qrels.{stem}"
        for path in (topics_path, qrels_path):
            if not path.is_file():
                raise ConfigError(f"{path} not found (MIRACL {lang} {split})")
        queries = load_topics(topics_path)
        qrels = load_trec_qrels(qrels_path, queries=queries)
        files = sorted((base / f"miracl-corpus-v1.0-{lang}").glob("*.jsonl*"))
        corpus = (prepare_corpus(files[0], lambda digest: _corpus_rows(files, digest), workdir=workdir,
                                 reader=f"miracl-corpus-1-{len(files)}", id_field="docid")
                  if files else Corpus.from_passages([]))
        revision = hashlib.sha256((corpus.fingerprint + repr(sorted(queries.items()))).encode()).hexdigest()[:16]
        return DatasetSplit(
            name=f"miracl-{lang}", split=split, corpus=corpus, queries=queries, qrels=qrels, revision=revision,
            rules=EvalRules(metrics=["nDCG@10", "R@100"]),
            citation="Zhang et al., TACL 2023 (MIRACL)",
        )
