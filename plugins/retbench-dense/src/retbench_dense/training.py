"""Contrastive training of a bi-encoder (DPR's recipe, generalised).

Loss ``info-nce`` (DPR, DRAMA): InfoNCE with a temperature over every passage in the batch:
each question's positive, the other questions' positives (in-batch negatives) and the hard
negatives the sampler gave any question in the batch (shared across the batch, as in DPR). A
passage that is also a positive of the question is masked out of its negatives. Loss
``triplet`` (ANCE's ``--triplet``): a 2-way softmax of each question over its positive and its
own hard negative, no in-batch negatives. ``matryoshka_dims`` (DRAMA, MRL): the loss is summed
over the full vectors and each listed prefix of them, each normalised as at search time. AdamW with linear warm-up and decay,
gradient clipping and accumulation. The report keeps the loss and (unclipped) gradient-norm
curves and their variances (SyNeg's training-stability measure) and how many training items no
batch reached (``max_steps`` cut an epoch short). A checkpoint (model, optimizer, scheduler, losses) is
written every ``checkpoint_every`` optimizer steps; a killed run resumes from it.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from retbench import ConfigError, DatasetSplit, Passage, atomic_write_bytes, attributed, checked_negatives, track
from retbench_dense.settings import passage_text


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    gradient_accumulation: int = 1
    hard_negatives: int = 1
    temperature: float = 1.0
    max_steps: int | None = None
    checkpoint_every: int = 50
    seed: int = 0
    loss: str = "info-nce"
    matryoshka_dims: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got '{self.loss}'")
        if any(d <= 0 for d in self.matryoshka_dims):
            raise ConfigError(f"matryoshka_dims must be positive, got {list(self.matryoshka_dims)}")


LOSSES = ("info-nce", "triplet")


def training_items(train: DatasetSplit) -> list[dict[str, Any]]:
    """One item per question with at least one relevant passage in the corpus."""
    known = set(train.corpus.ids)
    items = []
    for qid, judged in train.qrels.items():
        positives = [d for d, rel in judged.items() if rel > 0 and d in known]
        if positives and qid in train.queries:
            items.append({"qid": qid, "query": train.queries[qid], "positives": positives,
                          "answers": list(train.answers.get(qid, []))})
    if not items:
        raise ConfigError(f"{train.name} ({train.split}): no question has a relevant passage in the corpus")
    return items


def info_nce(queries: torch.Tensor, passages: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of each question against all passages; question i's target is column i."""
    scores = queries @ passages.T / temperature
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.nn.functional.cross_entropy(scores, torch.arange(len(queries), device=scores.device))


def triplet(queries: torch.Tensor, passages: torch.Tensor, negative_of: list[int | None],
            temperature: float) -> torch.Tensor:
    """ANCE's triplet loss: -log softmax over (own positive, own hard negative); question i's
    positive is passage i, its negative passage ``negative_of[i]`` (questions without one skip)."""
    rows = [i for i, j in enumerate(negative_of) if j is not None]
    if not rows:
        raise ConfigError("loss 'triplet' needs a hard negative per question (hard_negatives >= 1 and a sampler)")
    q = queries[rows]
    positive = (q * passages[rows]).sum(-1)
    negative = (q * passages[[negative_of[i] for i in rows]]).sum(-1)
    logits = torch.stack([positive, negative], dim=1) / temperature
    return -torch.nn.functional.log_softmax(logits, dim=1)[:, 0].mean()


def false_negative_mask(batch: list[dict[str, Any]], passage_ids: list[str]) -> torch.Tensor:
    mask = torch.zeros(len(batch), len(passage_ids), dtype=torch.bool)
    for i, item in enumerate(batch):
        positives = set(item["positives"])
        for j, pid in enumerate(passage_ids):
            if j != i and pid in positives:
                mask[i, j] = True
    return mask


def _batches(items: list[dict[str, Any]], size: int, seed: int, epoch: int) -> list[list[dict[str, Any]]]:
    order = list(range(len(items)))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return [[items[i] for i in order[s : s + size]] for s in range(0, len(order), size)]


def _positive(item: dict[str, Any], seed: int, epoch: int) -> str:
    """The positive a question trains on this epoch (one of its relevant passages)."""
    positives = item["positives"]
    return positives[random.Random(f"{seed}:{epoch}:{item['qid']}").randrange(len(positives))]


def train_bi_encoder(retriever: Any, train: DatasetSplit, *, sampler: Any, settings: TrainingSettings,
                     workdir: Path) -> dict[str, Any]:
    """Train ``retriever.encoder()`` in place; return the training report."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(settings.seed)
    encoder = retriever.encoder()
    items = training_items(train)
    corpus = train.corpus
    batches_per_epoch = math.ceil(len(items) / settings.batch_size)
    total = settings.epochs * math.ceil(batches_per_epoch / settings.gradient_accumulation)
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total), total)
    state = {"step": 0, "losses": [], "micro": 0}
    checkpoint = workdir / "checkpoint.pt"
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True)  # tensors and plain values only: no code runs
        encoder.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
    if hasattr(sampler, "prepare"):
        sampler.prepare(items, corpus=corpus, retriever=retriever, hard_negatives=train.hard_negatives,
                        workdir=workdir / "negatives")
    started = time.perf_counter()
    encoder.train()
    schedule = [(epoch, batch) for epoch in range(settings.epochs)
                for batch in _batches(items, settings.batch_size, settings.seed, epoch)]
    schedule = schedule[: total * settings.gradient_accumulation]
    pending = 0.0
    for micro, (epoch, batch) in enumerate(track(schedule, description=f"training ({retriever.name})"), 1):
        if micro <= state["micro"]:
            continue  # done before the checkpoint this run resumed from
        loss = _batch_loss(encoder, batch, sampler, corpus, retriever, settings, epoch, micro)
        (loss / settings.gradient_accumulation).backward()
        pending += loss.item() / settings.gradient_accumulation
        if micro % settings.gradient_accumulation and micro < len(schedule):
            continue
        grad_norm = torch.nn.utils.clip_grad_norm_(encoder.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["micro"] = micro
        state["losses"].append(round(pending, 5))
        state.setdefault("grad_norms", []).append(round(float(grad_norm), 5))  # before clipping
        pending = 0.0
        if sampler is not None and hasattr(sampler, "on_step") and micro < len(schedule):  # none after the last
            sampler.on_step(state["step"], items=items, corpus=corpus, retriever=retriever)
            encoder.train()
        if state["step"] % settings.checkpoint_every == 0 and micro < len(schedule):
            _save_checkpoint(checkpoint, encoder, optimizer, scheduler, state)
    if hasattr(sampler, "close"):
        sampler.close()
    seen = {item["qid"] for _, batch in schedule for item in batch}
    return _report(state, items, seen, sampler, settings, time.perf_counter() - started)


def _batch_loss(encoder, batch, sampler, corpus, retriever, settings: TrainingSettings, epoch: int,
                micro: int) -> torch.Tensor:
    positives = [_positive(item, settings.seed, epoch) for item in batch]
    negatives: list[list[str]] = [[] for _ in batch]
    if sampler is not None:
        who = f"negative sampler '{getattr(sampler, 'name', type(sampler).__name__)}'"
        with attributed(who, "sample"):
            picked = sampler.sample(batch, corpus=corpus, retriever=retriever, k=settings.hard_negatives,
                                    seed=settings.seed * 1_000_003 + micro)
        negatives = checked_negatives(picked, batch, k=settings.hard_negatives, corpus=corpus, who=who)
    chosen = positives + [negative for picks in negatives for negative in picks]
    passage_ids = [c.id if isinstance(c, Passage) else c for c in chosen]
    stored = iter(corpus.get([c for c in chosen if not isinstance(c, Passage)]))
    separator = encoder.settings.title_separator
    texts = [passage_text(c if isinstance(c, Passage) else next(stored), separator) for c in chosen]
    q = encoder.pooled([item["query"] for item in batch], side="query")
    p = encoder.pooled(texts, side="passage")
    full = q.shape[1]
    dims = [full] + sorted({d for d in settings.matryoshka_dims if d < full}, reverse=True)
    if settings.loss == "triplet":
        starts = [len(batch) + sum(len(n) for n in negatives[:i]) for i in range(len(batch))]
        negative_of = [start if negatives[i] else None for i, start in enumerate(starts)]
        return sum(triplet(encoder.finish(q, d), encoder.finish(p, d), negative_of, settings.temperature)
                   for d in dims)
    mask = false_negative_mask(batch, passage_ids).to(q.device)
    return sum(info_nce(encoder.finish(q, d), encoder.finish(p, d), mask, settings.temperature) for d in dims)


def _save_checkpoint(path: Path, encoder, optimizer, scheduler, state: dict[str, Any]) -> None:
    import io

    buffer = io.BytesIO()
    torch.save({"model": encoder.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "state": state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _report(state: dict[str, Any], items, seen: set[str], sampler, settings: TrainingSettings,
            seconds: float) -> dict[str, Any]:
    losses = state["losses"]
    tenth = max(1, len(losses) // 10)
    return {
        "steps": len(losses),
        "train_items": len(items),
        "items_unseen": len(items) - len(seen),  # > 0 when max_steps stops inside an epoch
        "settings": {**asdict(settings), "matryoshka_dims": list(settings.matryoshka_dims)},
        "negatives": getattr(sampler, "name", None) or "in-batch only",
        "negatives_log": list(getattr(sampler, "log", [])),
        "loss_curve": losses,
        "grad_norm_curve": state.get("grad_norms", []),
        "loss_variance": round(statistics.pvariance(losses), 6) if losses else None,
        "grad_norm_variance": round(statistics.pvariance(state["grad_norms"]), 6) if state.get("grad_norms") else None,
        "loss_first_tenth": round(sum(losses[:tenth]) / tenth, 4) if losses else None,
        "loss_last_tenth": round(sum(losses[-tenth:]) / tenth, 4) if losses else None,
        "train_seconds": round(seconds, 2),
        **({"generation_seconds": sampler.generation_seconds_} if hasattr(sampler, "generation_seconds_") else {}),
    }
