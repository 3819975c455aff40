"""Negative samplers for bi-encoder training (``retbench_register_negative_samplers``).

``in-batch``: none beyond the other questions' positives. ``random``: uniform over the corpus.
``bm25-hard``: non-positives (without the answer, on QA data) drawn at random from BM25's
top 30 (DPR), or the dataset's own hard negatives where it ships them (DPR's retriever JSON). ``ann``: ANCE's negatives from an ANN index of the
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

from retbench import Component, ConfigError, Corpus, note


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


def _ranked_negatives(run: Mapping[str, Mapping[str, float]], items: Sequence[Mapping[str, Any]], *,
                      corpus: Corpus | None = None, answer_filter: bool = False,
                      keep: int | None = None) -> dict[str, list[str]]:
    """Each question's retrieved passages, best first, without its positives.

    ``answer_filter``: also without passages whose text contains one of the question's answers
    (DPR's and ANCE's rule for QA data; questions without answers are not filtered).
    ``keep``: look at the first ``keep`` non-positive ranks only (ANCE's ``negative_sample``),
    counted before the answer filter as ANCE counts them."""
    from retbench import has_answer

    candidates = {}
    for item in items:
        positives = set(item["positives"])
        ranked = sorted(run.get(item["qid"], {}).items(), key=lambda x: (-x[1], x[0]))
        pool = [d for d, _ in ranked if d not in positives][:keep]
        answers = item.get("answers") or ()
        if answer_filter and answers and corpus is not None and pool:
            pool = [p.id for p in corpus.get(pool) if not has_answer(answers, p.text)]
        candidates[item["qid"]] = pool
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
    """BM25 hard negatives as DPR trains with them: passages BM25 ranks in the top ``depth``
    that are not positives and (QA data) contain no answer, one drawn at random for each
    question and batch (DPR shuffles each question's pool every epoch and takes the first).

    ``pick=top`` takes the best-ranked instead (harder, more false negatives).
    ``answer_filter``: drop passages containing an answer string (questions with answers only).
    ``use_dataset_negatives``: questions whose dataset ships hard negatives use those.
    """

    name = "bm25-hard"
    version = "2"

    def __init__(self, depth: int = 30, pick: str = "random", answer_filter: bool = True,
                 use_dataset_negatives: bool = True, backend: str = "bm25s") -> None:
        self.depth = depth
        self.pick = pick
        self.answer_filter = answer_filter
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
            run = {q: dict(sorted(r.items(), key=lambda x: (-x[1], x[0]))[: self.depth]) for q, r in run.items()}
            self.candidates_.update(_ranked_negatives(run, todo, corpus=corpus, answer_filter=self.answer_filter))

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str]]:
        return self._draw(batch, k, seed, pick=self.pick)


class AnnRefresher:
    """Rebuilds the ANN index of the model being trained and ranks the training questions.

    Uses the retriever's own ``index`` and ``search``, so it works for any retriever that
    trains; each refresh is logged with its step, duration and corpus size.
    """

    def __init__(self, *, every: int, depth: int, keep: int | None = None, answer_filter: bool = True) -> None:
        self.every = every
        self.depth = depth
        self.keep = keep
        self.answer_filter = answer_filter
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
        candidates = _ranked_negatives(run, items, corpus=corpus, answer_filter=self.answer_filter, keep=self.keep)
        entry = {"step": step, "seconds": round(time.perf_counter() - started, 2), "documents": len(corpus)}
        self.log.append(entry)
        note(f"ANN refresh at step {step}: {entry['seconds']} s")
        return candidates


def model_snapshot(retriever: Any, device: str | None = None) -> Any:
    """A copy of ``retriever`` whose encoder is frozen at its current weights (ANCE's checkpoint
    handed to the ANN-data generator): indexing and searching it leaves the live one alone."""
    import copy

    snapshot = copy.copy(retriever)
    for name in ("index_", "ids_"):
        snapshot.__dict__.pop(name, None)
    encoder = copy.deepcopy(retriever.encoder())
    snapshot.encoder_ = encoder.to(device) if device else encoder
    if device:
        snapshot.device = device
    return snapshot


class BackgroundRefresher:
    """ANCE's asynchronous ANN-data generation: each refresh indexes and searches a snapshot of
    the model on a worker thread (on ``device`` when given, e.g. a second GPU) while training
    goes on with the previous negatives; the new ones take over at the first step after it
    finishes. A refresh that falls due while one runs starts when that one is done, from the
    model as it is then (ANCE's generator takes the latest checkpoint). Which step a refresh
    lands at depends on timing, so runs are not bit-for-bit repeatable; the log says, per
    refresh, the step its snapshot was taken at (``step``) and the step it took over (``applied_at``)."""

    def __init__(self, refresher: AnnRefresher, *, device: str | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.refresher = refresher
        self.device = device
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ann-refresh")
        self.running: Any = None
        self.due_while_running = False

    @property
    def log(self) -> list[dict[str, Any]]:
        return self.refresher.log

    def start(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, step: int,
              workdir: Path) -> None:
        if self.running is not None:
            self.due_while_running = True
            return
        snapshot = model_snapshot(retriever, self.device)
        self.running = self.pool.submit(self.refresher.refresh, items, corpus=corpus, retriever=snapshot,
                                        step=step, workdir=workdir)

    def collect(self, step: int) -> dict[str, list[str]] | None:
        """The finished refresh's negatives (and its log entry stamped with ``step``), else None."""
        if self.running is None or not self.running.done():
            return None
        candidates = self.running.result()  # a failed refresh fails the training here
        self.running = None
        self.refresher.log[-1]["applied_at"] = step
        return candidates

    def advance(self, step: int, *, due: bool, items: Sequence[Mapping[str, Any]], corpus: Corpus,
                retriever: Any, workdir: Path) -> dict[str, list[str]] | None:
        """After optimizer step ``step``: the negatives of a refresh that has finished (else
        None), and a new refresh started when one is due or was due while the last one ran."""
        fresh = self.collect(step)
        if due or (fresh is not None and self.due_while_running):
            self.due_while_running = False
            self.start(items, corpus=corpus, retriever=retriever, step=step, workdir=workdir)
        return fresh

    def close(self) -> None:
        """Wait for a refresh still running (its negatives are not used) and stop the worker."""
        if self.running is not None:
            self.running.result()
            self.refresher.log[-1]["applied_at"] = None
            self.running = None
        self.pool.shutdown()


class AnnNegatives(_CandidateSampler, Component):
    """ANCE: negatives drawn at random from the trained model's own ANN ranking, refreshed
    every ``refresh_every`` optimizer steps (and once before training).

    Defaults are ANCE's NQ recipe: search the top ``depth=200``, keep the first ``keep=100``
    non-positive ranks, drop those containing an answer (QA data), one at random per question.
    ANCE regenerates from a checkpoint saved every 1000 steps by an asynchronous job;
    ``refresh=sync`` (the default here) stops training for each refresh instead, so a run is
    repeatable; ``refresh=async`` is ANCE's way (:class:`BackgroundRefresher`), on
    ``refresh_device`` (say ``cuda:1``) when given, else next to training. The first
    refresh, before any step, is synchronous in both."""

    name = "ann"
    version = "2"
    late_params = ("refresh", "refresh_device")

    def __init__(self, refresh_every: int = 1000, depth: int = 200, keep: int | None = 100, pick: str = "random",
                 answer_filter: bool = True, refresh: str = "sync", refresh_device: str | None = None) -> None:
        self.refresh_every = refresh_every
        self.depth = depth
        self.keep = keep
        self.pick = pick
        self.answer_filter = answer_filter
        self.refresh = refresh
        self.refresh_device = refresh_device

    @property
    def log(self) -> list[dict[str, Any]]:
        return self.refresher_.log if hasattr(self, "refresher_") else []

    def prepare(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any,
                hard_negatives: Mapping[str, list[str]], workdir: Path) -> None:
        if not hasattr(retriever, "index") or not hasattr(retriever, "search"):
            raise ConfigError("ann negatives need a retriever that can index and search")
        if self.refresh not in ("sync", "async"):
            raise ConfigError(f"ann negatives: refresh must be 'sync' or 'async', got '{self.refresh}'")
        if self.refresh_device and self.refresh != "async":
            raise ConfigError("ann negatives: refresh_device needs refresh=async")
        self.workdir_ = workdir
        self.refresher_ = AnnRefresher(every=self.refresh_every, depth=self.depth, keep=self.keep,
                                       answer_filter=self.answer_filter)
        self.candidates_ = self.refresher_.refresh(items, corpus=corpus, retriever=retriever, step=0,
                                                   workdir=workdir)
        self.background_ = (BackgroundRefresher(self.refresher_, device=self.refresh_device)
                            if self.refresh == "async" else None)

    def on_step(self, step: int, *, items: Sequence[Mapping[str, Any]], corpus: Corpus, retriever: Any) -> None:
        background = self.background_
        if background is None:
            if self.refresher_.due(step):
                self.candidates_ = self.refresher_.refresh(items, corpus=corpus, retriever=retriever, step=step,
                                                           workdir=self.workdir_)
            return
        fresh = background.advance(step, due=self.refresher_.due(step), items=items, corpus=corpus,
                                   retriever=retriever, workdir=self.workdir_)
        if fresh is not None:
            self.candidates_ = fresh

    def close(self) -> None:
        """End of training: wait for a background refresh still running."""
        if getattr(self, "background_", None) is not None:
            self.background_.close()

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str]]:
        return self._draw(batch, k, seed, pick=self.pick)
