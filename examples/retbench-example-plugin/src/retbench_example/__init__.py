"""A minimal third-party retbench plugin: ranks passages by Jaccard word overlap."""

from __future__ import annotations

import re
from pathlib import Path

import retbench

WORD = re.compile(r"\w+")


class JaccardRetriever(retbench.Component):
    """Score = |query words ∩ passage words| / |query words ∪ passage words|."""

    name = "jaccard"
    version = "1"

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase

    def _words(self, text: str) -> frozenset[str]:
        return frozenset(WORD.findall(text.lower() if self.lowercase else text))

    def index(self, corpus: retbench.Corpus, *, workdir: Path) -> None:
        self.docs_ = [
            (p.id, self._words(p.contents()))
            for p in retbench.track(corpus, description="indexing (jaccard)", total=len(corpus))
        ]

    def search(self, queries, *, k: int) -> retbench.Run:  # type: ignore[no-untyped-def]
        run: retbench.Run = {}
        for qid, text in queries.items():
            words = self._words(text)
            scored = [(doc_id, len(words & terms) / len(words | terms)) for doc_id, terms in self.docs_]
            scored.sort(key=lambda x: (-x[1], x[0]))
            run[qid] = {doc_id: score for doc_id, score in scored[:k] if score > 0}
        return run


@retbench.hookimpl
def retbench_register_retrievers(register) -> None:  # type: ignore[no-untyped-def]
    register(JaccardRetriever)
