"""The ``bm25`` retriever: one set of parameters, two backends.

``bm25s`` (default): sparse-matrix BM25 in Python (bm25s), with a PyStemmer stemmer and a
stop-word list; ``lucene``: Anserini's Lucene BM25 through Pyserini (optional extra
``retbench-bm25[lucene]``). Defaults follow Pyserini's BEIR "flat" runs: k1=0.9, b=0.4,
title and text indexed as one field, Porter stemming, Lucene's English stop words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, Queries, Run, track

BACKENDS = ("bm25s", "lucene")
FIELDS = ("title+text", "text")

# org.apache.lucene.analysis.en.EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (the Anserini default).
LUCENE_STOPWORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with"
).split()


class BM25(Component):
    """Okapi BM25 over title+text; ``backend`` is ``bm25s`` (default) or ``lucene``."""

    name = "bm25"
    version = "1"

    def __init__(
        self,
        backend: str = "bm25s",
        k1: float = 0.9,
        b: float = 0.4,
        fields: str = "title+text",
        stemmer: str = "porter",
        stopwords: str = "lucene",
        threads: int = 1,
    ) -> None:
        self.backend = backend
        self.k1 = k1
        self.b = b
        self.fields = fields
        self.stemmer = stemmer
        self.stopwords = stopwords
        self.threads = threads

    def _validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"bm25: backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'")
        if self.fields not in FIELDS:
            raise ConfigError(f"bm25: fields must be one of {', '.join(FIELDS)}, got '{self.fields}'")

    def _engine(self) -> Any:
        self._validate()
        if self.backend == "lucene":
            from retbench_bm25.lucene import LuceneEngine

            return LuceneEngine(k1=self.k1, b=self.b, threads=self.threads)
        from retbench_bm25.bm25s_engine import Bm25sEngine

        return Bm25sEngine(k1=self.k1, b=self.b, stemmer=self.stemmer, stopwords=self.stopwords,
                           threads=self.threads)

    def _contents(self, corpus: Corpus) -> Any:
        for batch in corpus.iter_batches():
            for passage in batch:
                text = passage.contents() if self.fields == "title+text" else passage.text
                yield passage.id, text

    def index(self, corpus: Corpus, *, workdir: Path) -> None:
        self.engine_ = self._engine()
        docs = track(self._contents(corpus), description="indexing (bm25)", total=len(corpus))
        self.engine_.index(docs, workdir=workdir)

    def load_index(self, *, workdir: Path) -> None:
        self.engine_ = self._engine()
        self.engine_.load(workdir=workdir)

    def search(self, queries: Queries, *, k: int) -> Run:
        return self.engine_.search(queries, k=k)
