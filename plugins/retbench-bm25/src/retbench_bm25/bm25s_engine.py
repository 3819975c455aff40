"""bm25s backend: tokenise with one vocabulary, score with ``method='lucene'`` BM25."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from retbench import ConfigError, Run, track
from retbench.types import Queries

# Like Lucene's StandardTokenizer: runs of word characters, single characters kept.
TOKEN_PATTERN = r"(?u)\b\w+\b"
QUERY_BATCH = 1024


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

    def search(self, queries: Queries, *, k: int) -> Run:
        qids = list(queries)
        run: Run = {}
        k = min(k, len(self.doc_ids_))
        batches = [qids[i:i + QUERY_BATCH] for i in range(0, len(qids), QUERY_BATCH)]
        for batch in track(batches, description="searching (bm25s)"):
            tokens = self.tokenizer_.tokenize([queries[q] for q in batch], update_vocab=False,
                                              return_as="string", show_progress=False)
            # bm25s maps out-of-vocabulary words to "", which must not match anything.
            tokens = [[t for t in query if t] for query in tokens]
            answerable = [i for i, t in enumerate(tokens) if t]
            for i, qid in enumerate(batch):
                run[qid] = {}
            if not answerable:
                continue
            docs, scores = self.model_.retrieve([tokens[i] for i in answerable], k=k,
                                                n_threads=self.threads if self.threads > 1 else 0,
                                                show_progress=False)
            for row, i in enumerate(answerable):
                run[batch[i]] = {self.doc_ids_[d]: float(s) for d, s in zip(docs[row], scores[row]) if s > 0}
        return run
