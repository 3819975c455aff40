"""bm25s backend: tokenise with one vocabulary, score with ``method='lucene'`` BM25."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from retbench import ConfigError, Queries, Run, track

# Like Lucene's StandardTokenizer: runs of word characters, single characters kept.
TOKEN_PATTERN = r"(?u)\b\w+\b"
# Queries scored per sparse product: bounds the memory of the (queries x matching docs) result.
QUERY_BATCH = 128


class Bm25sEngine:
    def __init__(self, *, k1: float, b: float, stemmer: str, stopwords: str, threads: int) -> None:
        self.k1, self.b, self.threads = k1, b, threads
        self.stemmer_name, self.stopwords_name = stemmer, stopwords

    def _tokenizer(self):  # type: ignore[no-untyped-def]
        import Stemmer
        from bm25s.tokenization import Tokenizer

        from retbench_bm25.retriever import LUCENE_STOPWORDS

        stem = None
        if self.stemmer_name != "none":
            if self.stemmer_name not in Stemmer.algorithms():
                raise ConfigError(f"bm25: unknown stemmer '{self.stemmer_name}' "
                                  f"(PyStemmer has: none, {', '.join(Stemmer.algorithms())})")
            stem = Stemmer.Stemmer(self.stemmer_name).stemWord
        stopwords = {"lucene": LUCENE_STOPWORDS, "none": []}.get(self.stopwords_name, self.stopwords_name)
        return Tokenizer(lower=True, splitter=TOKEN_PATTERN, stopwords=stopwords, stemmer=stem)

    def index(self, docs: Iterable[tuple[str, str]], *, workdir: Path) -> None:
        import bm25s
        from bm25s.tokenization import Tokenized

        self.tokenizer_ = self._tokenizer()
        ids, texts = [], []
        for doc_id, text in docs:
            ids.append(doc_id)
            texts.append(text)
        tokens = self.tokenizer_.tokenize(texts, return_as="ids", show_progress=False)
        self.model_ = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        self.model_.index(Tokenized(ids=tokens, vocab=self.tokenizer_.get_vocab_dict()), show_progress=False)
        self.doc_ids_ = ids
        self.model_.save(str(workdir / "bm25s"), show_progress=False)
        (workdir / "doc_ids.json").write_text(json.dumps(ids), "utf-8")
        self.tokenizer_.save_vocab(str(workdir / "bm25s"))

    def load(self, *, workdir: Path) -> None:
        import bm25s

        self.tokenizer_ = self._tokenizer()
        self.tokenizer_.load_vocab(str(workdir / "bm25s"))
        self.model_ = bm25s.BM25.load(str(workdir / "bm25s"), show_progress=False)
        self.doc_ids_ = json.loads((workdir / "doc_ids.json").read_text("utf-8"))

    def _term_matrix(self):  # type: ignore[no-untyped-def]
        """bm25s' precomputed term scores as a (vocabulary x documents) CSR matrix (no copy)."""
        import scipy.sparse

        index = self.model_.scores
        shape = (len(index["indptr"]) - 1, index["num_docs"])
        return scipy.sparse.csr_matrix((index["data"], index["indices"], index["indptr"]), shape=shape)

    def search(self, queries: Queries, *, k: int) -> Run:
        """Score a batch of queries as one sparse product, then take the top k per query.

        bm25s' own ``retrieve`` scores one query at a time into a dense array and partitions
        all of it, mostly ties at zero; the sparse product yields only the documents sharing
        a term with the query, which is what makes single-threaded search fast (measured in
        benchmarks/bm25_backends.py). Documents without a query term are never returned, as
        in Lucene. Written by hand because no library does this selection step for us.
        """
        import numpy as np
        import scipy.sparse

        terms = self._term_matrix()
        empty = self.tokenizer_.get_vocab_dict().get("")
        qids = list(queries)
        token_ids = self.tokenizer_.tokenize([queries[q] for q in qids], update_vocab=False,
                                            return_as="ids", show_progress=False)
        run: Run = {}
        batches = [range(i, min(i + QUERY_BATCH, len(qids))) for i in range(0, len(qids), QUERY_BATCH)]
        for batch in track(batches, description="searching (bm25s)"):
            tokens = [token_ids[position] for position in batch]
            rows = np.repeat(np.arange(len(batch)), [len(t) for t in tokens])
            cols = np.fromiter((t for query in tokens for t in query), dtype=np.int64, count=len(rows))
            known = cols != empty  # out-of-vocabulary words map to ""
            counts = scipy.sparse.csr_matrix(
                (np.ones(int(known.sum()), dtype=np.float32), (rows[known], cols[known])),
                shape=(len(batch), terms.shape[0]))
            scores = counts @ terms
            indptr = scores.indptr.tolist()
            for row, position in enumerate(batch):
                matching = scores.indices[indptr[row]:indptr[row + 1]]
                values = scores.data[indptr[row]:indptr[row + 1]]
                if len(values) > k:
                    top = np.argpartition(values, len(values) - k)[len(values) - k:]
                    matching, values = matching[top], values[top]
                order = np.argsort(-values, kind="stable")
                run[qids[position]] = dict(zip(map(self.doc_ids_.__getitem__, matching[order].tolist()),
                                               values[order].tolist()))
        return run
