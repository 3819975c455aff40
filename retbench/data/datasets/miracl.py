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
from retbench.data.prepare import prepare_corpus
from retbench.data.download import DownloadError, Source, fetch
from retbench.errors import ConfigError, DataFormatError
from retbench.data.lines import iter_jsonl, iter_tsv, require_str
from retbench.data.types import Corpus, DatasetSplit, EvalRules

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


MIRACL_URL = "https://huggingface.co/datasets/miracl/miracl/resolve/main/"
MIRACL_CORPUS_URL = "https://huggingface.co/datasets/miracl/miracl-corpus/resolve/main/"


def _download_corpus(lang: str, folder: Path) -> None:
    """MIRACL's corpus comes in shards ``docs-0.jsonl.gz``, ``docs-1...``: fetch until one is missing."""
    shard = 0
    while True:
        name = f"miracl-corpus-v1.0-{lang}/docs-{shard}.jsonl.gz"
        try:
            fetch(Source(MIRACL_CORPUS_URL + name), folder)
        except DownloadError as exc:
            if shard and "HTTP 404" in str(exc):
                return
            raise
        shard += 1


class Miracl(Component):
    """MIRACL v1.0: multilingual Wikipedia retrieval; ``--dataset miracl:sw``. Without
    ``--data-dir`` topics and judgments are downloaded; the corpus with ``corpus=download``."""

    name = "miracl"
    version = "1"
    licence = "Apache-2.0 (topics, judgments); corpus CC BY-SA (Wikipedia)"
    default_split = "dev"

    def __init__(self, location: str | None = None, data_dir: str | None = None, corpus: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir
        self.corpus = corpus

    def _base(self, lang: str, split: str, workdir: Path) -> Path:
        if self.data_dir:
            base = Path(self.data_dir)
            return base / "miracl" if (base / "miracl").is_dir() else base
        base = workdir / "sources" / "miracl"
        try:
            for kind in ("topics", "qrels"):
                name = f"miracl-v1.0-{lang}/{kind}/{kind}.miracl-v1.0-{lang}-{split}.tsv"
                fetch(Source(MIRACL_URL + name), base / f"miracl-v1.0-{lang}" / kind)
            if self.corpus == "download":
                _download_corpus(lang, base / f"miracl-corpus-v1.0-{lang}")
        except DownloadError as exc:
            raise ConfigError(f"MIRACL {lang}: {exc} (or pass --data-dir with MIRACL's files)") from None
        return base

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        lang = self.location
        if lang not in LANGUAGES:
            raise ConfigError(f"choose a MIRACL language as miracl:<lang>, one of {', '.join(LANGUAGES)}"
                              + (f" (got '{lang}')" if lang else ""))
        base = self._base(lang, split, workdir)
        folder = base / f"miracl-v1.0-{lang}"
        stem = f"miracl-v1.0-{lang}-{split}.tsv"
        topics_path, qrels_path = folder / "topics" / f"topics.{stem}", folder / "qrels" / f"qrels.{stem}"
        for path in (topics_path, qrels_path):
            if not path.is_file():
                raise ConfigError(f"{path} not found (MIRACL {lang} {split})")
        queries = load_topics(topics_path)
        qrels = load_trec_qrels(qrels_path, queries=queries)
        corpus_dir = base / f"miracl-corpus-v1.0-{lang}"
        files = sorted([*corpus_dir.glob("*.jsonl"), *corpus_dir.glob("*.jsonl.gz")],
                       key=lambda p: (len(p.name), p.name))
        shards = hashlib.sha256(repr([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]).encode())
        corpus = (prepare_corpus(files[0], lambda digest: _corpus_rows(files, digest), workdir=workdir,
                                 reader=f"miracl-corpus-1-{shards.hexdigest()[:16]}", id_field="docid")
                  if files else Corpus.from_passages([]))
        revision = hashlib.sha256((corpus.fingerprint + repr(sorted(queries.items()))).encode()).hexdigest()[:16]
        return DatasetSplit(
            name=f"miracl-{lang}", split=split, corpus=corpus, queries=queries, qrels=qrels, revision=revision,
            rules=EvalRules(metrics=["nDCG@10", "R@100"]),
            citation="Zhang et al., TACL 2023 (MIRACL)",
        )
