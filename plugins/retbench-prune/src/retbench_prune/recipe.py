"""DRAMA's pruning recipe (after Sheared-LLaMA): learn hard-concrete masks over layers, heads,
FFN dimensions and hidden dimensions jointly with the model on a language-modelling loss, a
Lagrangian term driving each mask kind to the target shape; cut the masked units out; recover
with continued language-model training. Defaults are Sheared-LLaMA's pruning and continued
pre-training settings (``llmshearing/scripts/pruning.sh``, ``continue_pretrain.sh``,
``configs/llama2/7b.yaml``); the result is a model folder with ``retbench_model.json``
(shapes, parameter counts, held-out perplexity at each step, curves).

Each stage checkpoints (model, masks, optimiser, scheduler, RNG state, curve) every
``checkpoint_every`` steps, so a killed run resumes where it stopped and ends as an
uninterrupted one would; the output is cached by source model, target shape, text and
settings."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from retbench import ConfigError, atomic_write_json, default_home, note, resolve_model, stage_key
from retbench_prune.llama import MaskedModel, binarized_hidden, pruned_model, shape_of, shape_of_config
from retbench_prune.masks import PruningMasks, Shape
from retbench_prune.text import read_texts, split_blocks, text_digest, token_blocks

VERSION = "1"
METADATA = "retbench_model.json"
StepHook = Callable[[str, int], None]


@dataclass(frozen=True)
class PruneSettings:
    """Optimisation settings; the defaults are Sheared-LLaMA's (7B -> 2.7B on 4 x 2 GPUs)."""

    prune_steps: int = 3200  # pruning.sh: max_duration=3200ba
    recover_steps: int = 48000  # continue_pretrain.sh: max_duration=48000ba
    seq_len: int = 4096
    batch_size: int = 32  # pruning.sh: global_train_batch_size (continued pre-training: 256)
    recover_batch_size: int = 256
    micro_batch_size: int = 4  # device_train_microbatch_size
    lr: float = 1e-4
    mask_lr: float = 1.0  # lag_lr: the masks' and (as ascent) the Lagrange multipliers' rate
    lr_warmup: float = 0.1  # t_warmup=320ba of 3200
    recover_lr_warmup: float = 0.03  # 1440ba of 48000
    lagrangian_warmup: float = 0.2  # lagr_warmup=640ba of 3200
    min_lr_ratio: float = 0.1  # cosine_with_warmup alpha_f
    max_grad_norm: float = 1.0
    held_out_blocks: int = 64
    checkpoint_every: int = 50
    seed: int = 0

    def validate(self) -> None:
        for name in ("seq_len", "batch_size", "recover_batch_size", "micro_batch_size", "held_out_blocks",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"prune: {name} must be >= 1, got {getattr(self, name)}")
        if self.prune_steps < 1 or self.recover_steps < 0:
            raise ConfigError("prune: prune_steps must be >= 1 and recover_steps >= 0")


def target_shape(source: Shape, *, layers: int, heads: int, intermediate: int, hidden: int) -> Shape:
    target = replace(source, layers=layers, heads=heads, intermediate=intermediate, hidden=hidden)
    for name in ("layers", "heads", "intermediate", "hidden"):
        if not 0 < getattr(target, name) <= getattr(source, name):
            raise ConfigError(f"prune: target {name} must be in 1..{getattr(source, name)}, got {getattr(target, name)}")
    if source.kv_heads < source.heads and heads % source.kv_heads:
        raise ConfigError(f"prune: heads must be a multiple of the {source.kv_heads} key/value heads "
                          f"(grouped-query attention), got {heads}")
    return target


def schedule(step: int, steps: int, warmup: float, floor: float) -> float:
    """Linear warm-up, then cosine decay to ``floor`` of the peak (composer's cosine_with_warmup)."""
    warm = max(1, round(steps * warmup))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def perplexity(model: Any, blocks: torch.Tensor, micro_batch_size: int) -> float:
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), micro_batch_size):
            batch = blocks[start : start + micro_batch_size]
            loss = model(input_ids=batch, labels=batch).loss
            count = batch.numel() - len(batch)
            total += float(loss) * count
            tokens += count
    return math.exp(total / tokens)


def batch_at(blocks: torch.Tensor, step: int, size: int, seed: int) -> torch.Tensor:
    """The training batch of ``step``: a function of the step alone, so a resumed run sees the
    batches an uninterrupted one would."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return blocks[torch.randint(len(blocks), (size,), generator=generator)]


class Checkpoint:
    """One resumable training loop's state in ``path`` (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        return torch.load(self.path, weights_only=False) if self.path.is_file() else None

    def save(self, state: dict[str, Any]) -> None:
        temporary = self.path.with_suffix(".tmp")
        torch.save({**state, "rng": torch.get_rng_state()}, temporary)
        os.replace(temporary, self.path)


def _optimizer(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)


def _lm_loss(model: Any, batch: torch.Tensor, micro: int) -> float:
    """Backward of the mean LM loss over ``batch`` in micro-batches; the loss."""
    total = 0.0
    for start in range(0, len(batch), micro):
        part = batch[start : start + micro]
        loss = model(input_ids=part, labels=part).loss * len(part) / len(batch)
        loss.backward()
        total += float(loss.detach())
    return total


def prune_stage(model: Any, masks: PruningMasks, train: torch.Tensor, settings: PruneSettings, work: Path,
                on_step: StepHook | None = None) -> list[dict[str, float]]:
    """Masks and model trained together; the curve. Resumes from ``work/prune.pt``."""
    masked = MaskedModel(model)
    lambdas = list(masks.lambdas.parameters())
    optimizer = _optimizer([{"params": list(model.parameters()), "lr": settings.lr},
                            {"params": [m.log_alpha for m in masks.masks.values()], "lr": settings.mask_lr},
                            {"params": lambdas, "lr": settings.mask_lr}])
    steps = settings.prune_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: schedule(s, steps, settings.lr_warmup, settings.min_lr_ratio))
    checkpoint = Checkpoint(work / "prune.pt")
    curve, start = _resume(checkpoint, model, optimizer, scheduler, masks)
    micro = settings.micro_batch_size
    warmup = max(1, round(steps * settings.lagrangian_warmup))
    for step in range(start, steps):
        model.train()
        masks.train()
        batch = batch_at(train, step, settings.batch_size, settings.seed)
        lm = lagrangian = 0.0
        for first in range(0, len(batch), micro):  # fresh mask samples per micro-batch, as l0_module.forward
            part = batch[first : first + micro]
            masked.zs = masks()
            loss = model(input_ids=part, labels=part).loss
            penalty, report = masks.lagrangian(step / warmup)
            share = len(part) / len(batch)
            ((loss + penalty) * share).backward()
            lm += float(loss.detach()) * share
            lagrangian += float(penalty.detach()) * share
        torch.nn.utils.clip_grad_norm_([*model.parameters(), *masks.parameters()], settings.max_grad_norm)
        for multiplier in lambdas:  # gradient ascent on the multipliers (train.py: lr = -lag_lr)
            if multiplier.grad is not None:
                multiplier.grad.neg_()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        curve.append({"step": step + 1, "lm_loss": round(lm, 5), "lagrangian": round(lagrangian, 6), **{
            k: round(v, 5) for k, v in report.items()},
            **{f"lambda_{k}": round(float(v.detach()), 5) for k, v in masks.lambdas.items()}})
        _maybe_checkpoint(checkpoint, step + 1, steps, settings, model, optimizer, scheduler, curve, masks)
        if on_step is not None:
            on_step("prune", step + 1)
    masked.remove()
    return curve


def recover_stage(model: Any, train: torch.Tensor, settings: PruneSettings, work: Path,
                  on_step: StepHook | None = None) -> list[dict[str, float]]:
    """Continued language-model training of the pruned model; the curve. Resumes from
    ``work/recover.pt``."""
    optimizer = _optimizer([{"params": list(model.parameters()), "lr": settings.lr}])
    steps = settings.recover_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: schedule(s, steps, settings.recover_lr_warmup, settings.min_lr_ratio))
    checkpoint = Checkpoint(work / "recover.pt")
    curve, start = _resume(checkpoint, model, optimizer, scheduler)
    for step in range(start, steps):
        model.train()
        batch = batch_at(train, step, settings.recover_batch_size, settings.seed + 1)
        loss = _lm_loss(model, batch, settings.micro_batch_size)
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        curve.append({"step": step + 1, "lm_loss": round(loss, 5)})
        _maybe_checkpoint(checkpoint, step + 1, steps, settings, model, optimizer, scheduler, curve)
        if on_step is not None:
            on_step("recover", step + 1)
    return curve


def _resume(checkpoint: Checkpoint, model: Any, optimizer: Any, scheduler: Any,
            masks: PruningMasks | None = None) -> tuple[list[dict[str, float]], int]:
    state = checkpoint.load()
    if state is None:
        return [], 0
    model.load_state_dict(state["model"])
    if masks is not None:
        masks.load_state_dict(state["masks"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    note(f"prune: resuming {checkpoint.path.stem} at step {state['step']}")
    return state["curve"], state["step"]


def _maybe_checkpoint(checkpoint: Checkpoint, step: int, steps: int, settings: PruneSettings, model: Any,
                      optimizer: Any, scheduler: Any, curve: list[dict[str, float]],
                      masks: PruningMasks | None = None) -> None:
    if step % settings.checkpoint_every and step != steps:
        return
    checkpoint.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "curve": curve,
                     **({"masks": masks.state_dict()} if masks is not None else {})})
    if step % 10 == 0 or step == steps:
        note(f"prune: {checkpoint.path.stem} step {step}/{steps}, LM loss {curve[-1]['lm_loss']:.3f}")


def _load(folder: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(folder)


def _counts(shape: Shape) -> dict[str, Any]:
    return {"shape": asdict(shape), "parameters": shape.parameters(),
            "non_embedding_parameters": shape.non_embedding_parameters()}


def prune(model: str, text: Path, *, layers: int, heads: int, intermediate: int, hidden: int,
          settings: PruneSettings = PruneSettings(), init: str = "pruned", home: Path | None = None,
          on_step: StepHook | None = None) -> Path:
    """The folder of ``model`` pruned to the target shape and recovered (``init="random"``: a
    randomly initialised model of that shape, the control DRAMA's claim needs); cached."""
    from filelock import FileLock

    settings.validate()
    if init not in ("pruned", "random"):
        raise ConfigError(f"prune: init must be 'pruned' or 'random', got '{init}'")
    if not text.is_file():
        raise ConfigError(f"prune: no such text file: {text}")
    from transformers import AutoConfig

    reference = resolve_model(model)
    source = shape_of_config(AutoConfig.from_pretrained(reference.path))
    target = target_shape(source, layers=layers, heads=heads, intermediate=intermediate, hidden=hidden)
    key = stage_key(version=VERSION, source=reference.identity(), target=asdict(target), text=text_digest(text),
                    settings=asdict(settings), init=init)[:20]
    out = (home or default_home()) / "models" / "pruned" / f"{init}-{key}"
    with FileLock(str(out) + ".lock"):
        if (out / METADATA).is_file():
            note(f"prune: cached {out}")
            return out
        work = out.with_name(out.name + ".work")
        work.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        big, tokenizer = _load(reference.path)
        torch.manual_seed(settings.seed)
        blocks = token_blocks(read_texts(text), tokenizer, settings.seq_len, source=text)
        train, held_out = split_blocks(blocks, settings.held_out_blocks, settings.seed, source=text)
        micro = settings.micro_batch_size
        record: dict[str, Any] = {
            "made_by": "retbench prune", "version": VERSION, "init": init, "source_model": reference.identity(),
            "source": _counts(source), "target": _counts(target), "text": {"path": str(text), "sha256": text_digest(text),
            "training_blocks": len(train), "held_out_blocks": len(held_out), "seq_len": settings.seq_len},
            "settings": asdict(settings), "perplexity": {"source": perplexity(big, held_out, micro)}}
        if init == "random":
            small = _random_model(big, target, settings.seed)
        else:
            masks = PruningMasks(source, target)
            record["prune_curve"] = prune_stage(big, masks, train, settings, work, on_step)
            masks.eval()
            zs = binarized_hidden(masks())
            small = pruned_model(big, zs)
            record["kept"] = {"layers": torch.nonzero(zs["layer"][0]).flatten().tolist(),
                              "hidden": torch.nonzero(zs["hidden"][0]).flatten().tolist()}
        record["perplexity"]["pruned" if init == "pruned" else "initial"] = perplexity(small, held_out, micro)
        record["recover_curve"] = recover_stage(small, train, settings, work, on_step)
        record["perplexity"]["recovered"] = perplexity(small, held_out, micro)
        actual = shape_of(small)
        if actual != target or sum(p.numel() for p in small.parameters()) != target.parameters():
            raise RuntimeError(f"prune: the pruned model has shape {actual}, expected {target}")
        record["seconds"] = round(time.perf_counter() - began, 1)
        staging = out.with_name(out.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        small.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        atomic_write_json(staging / METADATA, record)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staging, out)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _random_model(big: Any, target: Shape, seed: int) -> Any:
    """A freshly initialised model of the target shape (the same config otherwise)."""
    import copy

    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(big.config)
    config.num_hidden_layers, config.num_attention_heads = target.layers, target.heads
    config.intermediate_size, config.hidden_size, config.head_dim = target.intermediate, target.hidden, target.head_dim
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[: target.layers]
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def summary(folder: Path) -> dict[str, Any]:
    """What a record shows of a pruned model folder: shapes, parameter counts, perplexities."""
    record = json.loads((folder / METADATA).read_text())
    return {k: record[k] for k in ("made_by", "init", "source_model", "source", "target", "perplexity", "seconds")}
