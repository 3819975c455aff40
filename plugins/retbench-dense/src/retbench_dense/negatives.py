"""Negative samplers for bi-encoder training (``retbench_register_negative_samplers``).

``in-batch``: none beyond the other questions' positives. ``random``: uniform over the corpus.
``bm25-hard``: top-ranked non-positives of BM25 (DPR), or the dataset's own hard negatives
where it ships them (DPR's retriever JSON). ``ann``: ANCE's negatives from an ANN index of the
model being trained, rebuilt every ``refresh_every`` steps by :class:`AnnRefresher`, which
later samplers can reuse.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, progress


class InBatch(Component):
    name = "in-batch"
    version = "1"

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str]]:
        return [[] for _ in batch]


class RandomNegatives(Component):
    name = "random"
    version = "1"

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str]]:
        rng = random.Random(seed)
        ids = getattr(self, "ids_", None) or corpus.ids
        self.ids_ = ids
        chosen = []
        for item in batch:
            positives = set(item["positives"])
            picks: list[str] = []
            while len(picks) < min(k, len(ids) - len(positives)):
                candidate = ids[rng.randrange(len(ids))]
                if candidate not in positives and candidate not in picks:
                    picks.append(candidate)
            chosen.append(picks)
        return chosen


def _ranked_negatives(run: Mapping[str, Mapping[str, float]], items: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each question's retrieved passages, best first, without its positives."""
    candidates = {}
    for item in items:
        positives = set(item["positives"])
        ranked = sorted(run.get(item["qid"], {}).items(), key=lambda x: (-x[1], x[0]))
        candidates[item["qid"]] = [d for d, _ in ranked if d not in positives]
    return candidates


class _CandidateSampler:
    """Shared by samplers that draw from a per-question candidate list."""

    def _draw(self, batch: Sequence[Mapping[str, Any]], k: int, seed: int, *, pick: str) -> list[list[str]]:
        rng = random.Random(seed)
        chosen = []
        for item in batch:
            pool = self.candidates_.get(item["qid"], [])
            if pick == "top":
                chosen.append(pool[:k])
            else:
                chosen.append(rng.sample(pool, min(k, len(pool))))
        return chosen


class Bm25Hard(_CandidateSampler, Component):
    """Top-ranked BM25 passages that are not positives (DPR: the top one, ``k=1``).

    ``pick=top`` takes the best-ranked (DPR), ``random`` samples among the top ``depth``.
    ``use_dataset_negatives``: questions whose dataset ships hard negatives use those.
    """

    name = "bm25-hard"
    version = "1"

    def __init__(self, depth: int = 30, pick: str = "top", use_dataset_negatives: bool = True,
                 backend: str = "bm25s") -> None:
        self.depth = depth
        self.pick = pick
        self.use_dataset_negatives = use_dataset_negatives
        self.backend = backend

    def prepare(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any,
                hard_negatives: Mapping[str, list[str]], workdir: Path) -> None:
        if self.pick not in ("top", "random"):
            raise ConfigError(f"bm25-hard: pick must be 'top' or 'random', got '{self.pick}'")
        given = {}
        if self.use_dataset_negatives:
            for item in items:
                positives = set(item["positives"])
                kept = [d for d in hard_negatives.get(item["qid"], []) if d not in positives]
                if kept:
                    given[item["qid"]] = kept
        todo = [item for item in items if item["qid"] not in given]
        self.candidates_ = dict(given)
        self.log = [{"dataset_negatives": len(given), "bm25_queries": len(todo)}]
        if todo:
            from retbench_bm25.retriever import BM25

            bm25 = BM25(backend=self.backend)
            workdir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=workdir) as folder:
                bm25.index(corpus, workdir=Path(folder))
                run = bm25.search({item["qid"]: item["query"] for item in todo}, k=self.depth + 5)
            self.candidates_.update(_ranked_negatives(run, todo))

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str]]:
        return self._draw(batch, k, seed, pick=self.pick)


class AnnRefresher:
    """Rebuilds the ANN index of the model being trained and ranks the training questions.

    Uses the retriever's own ``index`` and ``search``, so it works for any retriever that
    trains; each refresh is logged with its step, duration and corpus size.
    """

    def __init__(self, *, every: int, depth: int) -> None:
        self.every = every
        self.depth = depth
        self.log: list[dict[str, Any]] = []

    def due(self, step: int) -> bool:
        return step > 0 and self.every > 0 and step % self.every == 0

    def refresh(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, step: int,
                workdir: Path | None = None) -> dict[str, list[str]]:
        started = time.perf_counter()
        parent = workdir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent, prefix="ann-") as folder:
            retriever.index(corpus, workdir=Path(folder))
            run = retriever.search({item["qid"]: item["query"] for item in items}, k=self.depth)
        candidates = _ranked_negatives(run, items)
        entry = {"step": step, "seconds": round(time.perf_counter() - started, 2), "documents": len(corpus)}
        self.log.append(entry)
        progress.note(f"ANN refresh at step {step}: {entry['seconds']} s")
        return candidates


class AnnNegatives(_CandidateSampler, Component):
    """ANCE: negatives sampled from the top ``depth`` of the trained model's own ANN ranking,
    refreshed every ``refresh_every`` optimizer steps (and once before training)."""

    name = "ann"
    version = "1"

    def __init__(self, refresh_every: int = 20, depth: int = 200, pick: str = "random") -> None:
        self.refresh_every = refresh_every
        self.depth = depth
        self.pick = pick

    @property
    def log(self) -> list[dict[str, Any]]:
        return self.refresher_.log if hasattr(self, "refresher_") else []

    def prepare(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any,
                hard_negatives: Mapping[str, list[str]], workdir: Path) -> None:
        if not hasattr(retriever, "index") or not hasattr(retriever, "search"):
            raise ConfigError("ann negatives need a retriever that can index and search")
        self.workdir_ = workdir
        self.refresher_ = AnnRefresher(every=self.refresh_every, depth=self.depth)
        self.candidates_ = self.refresher_.refresh(items, corpus=corpus, retriever=retriever, step=0,
                                                   workdir=workdir)

    def on_step(self, step: int, *, items: Sequence[Mapping[str, Any]], corpus: Corpus, retriever: Any) -> None:
        if self.refresher_.due(step):
            self.candidates_ = self.refresher_.refresh(items, corpus=corpus, retriever=retriever, step=step,
                                                       workdir=self.workdir_)

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str]]:
        return self._draw(batch, k, seed, pick=self.pick)
