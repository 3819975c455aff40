"""PRAG's per-passage LoRA: training with peft, and the on-disk store.

Every passage's LoRA starts from the same seeded initialisation (peft's: A random, B zero),
is trained for ``epochs`` over the passage's training texts with a language-modelling loss
on every token, batch 1, AdamW (reference ``src/encode.py``); a passage without training
texts keeps the initialisation (B = 0: no change to the model). Each LoRA is saved as one safetensors file per passage (written atomically, so a
killed preparation resumes at the first passage without a file).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retbench import ConfigError, LoraWeights, Passage, stage_key
from retbench_parametric.augment import passage_digest

PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 2
    alpha: float = 32.0
    dropout: float = 0.0
    learning_rate: float = 3e-4
    epochs: int = 1
    targets: tuple[str, ...] = ("gate_proj", "up_proj", "down_proj")
    max_length: int = 3000
    seed: int = 0

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "targets": list(self.targets)}


@dataclass
class StoredLora:
    weights: LoraWeights
    offline_seconds: float
    nbytes: int
    meta: dict[str, Any] = field(default_factory=dict)


class LoraStore:
    """One ``<passage digest>.safetensors`` per passage; the metadata keeps the seconds its
    augmentation and training took, so cached LoRAs still report their preparation cost."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, passage: Passage) -> Path:
        return self.folder / f"{passage_digest(passage)}.safetensors"

    def has(self, passage: Passage) -> bool:
        return self.path(passage).is_file()

    def save(self, passage: Passage, weights: LoraWeights, meta: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        tensors = {}
        for name, (a, b) in weights.factors.items():
            tensors[f"{name}.lora_A"] = a.detach().contiguous().cpu()
            tensors[f"{name}.lora_B"] = b.detach().contiguous().cpu()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".lora.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"scaling": repr(weights.scaling), "passage_id": passage.id,
                                              "meta": json.dumps(meta)})
            os.replace(tmp, self.path(passage))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def load(self, passage: Passage) -> StoredLora:
        from safetensors import safe_open

        path = self.path(passage)
        factors: dict[str, list[Any]] = {}
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
            for key in handle.keys():
                name, _, part = key.rpartition(".")
                factors.setdefault(name, [None, None])[0 if part == "lora_A" else 1] = handle.get_tensor(key)
        meta = json.loads(metadata["meta"])
        weights = LoraWeights(factors={n: (a, b) for n, (a, b) in factors.items()}, scaling=float(metadata["scaling"]))
        return StoredLora(weights, meta.get("offline_seconds", 0.0), path.stat().st_size, meta)


def store_folder(root: Path, *, generator_identity: dict[str, Any], settings: LoraSettings,
                 augmenter: dict[str, Any], training_format: dict[str, Any]) -> Path:
    """Where PRAG LoRAs for this base model and recipe live (shared by prag, prag-combine and
    DyPRAG's training data)."""
    return root / "prag-loras" / stage_key(generator=generator_identity, lora=settings.key(),
                                           augmenter=augmenter, training_format=training_format)[:24]


class PassageLoraTrainer:
    """Trains one LoRA per passage on a private copy of the generator's model."""

    def __init__(self, base_model: Any, encode: Any, settings: LoraSettings) -> None:
        """``encode(text, max_length)`` gives a text's token ids as the generator reads them."""
        import torch
        from peft import LoraConfig, get_peft_model

        self.settings = settings
        self.encode = encode
        torch.manual_seed(settings.seed)
        config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                            target_modules=list(settings.targets), bias="none", task_type="CAUSAL_LM")
        try:
            self.model = get_peft_model(copy.deepcopy(base_model), config)
        except ValueError as error:
            raise ConfigError(f"prag: cannot put LoRAs on {list(settings.targets)} of this model: {error}") from error
        self.model.train()
        self.lora_parameters = {n: p for n, p in self.model.named_parameters() if "lora_" in n}
        self.initial = {n: p.detach().clone() for n, p in self.lora_parameters.items()}

    def reset(self) -> None:
        import torch

        with torch.no_grad():
            for name, parameter in self.lora_parameters.items():
                parameter.copy_(self.initial[name])

    def train(self, texts: list[str]) -> tuple[LoraWeights, list[float]]:
        """Train from the shared initialisation on ``texts``; the LoRA and the loss per step."""
        import torch

        self.reset()
        optimizer = torch.optim.AdamW(self.lora_parameters.values(), lr=self.settings.learning_rate)
        device = next(self.model.parameters()).device
        losses = []
        for _ in range(self.settings.epochs):
            for text in texts:
                ids = torch.tensor([self.encode(text, self.settings.max_length)], device=device)
                loss = self.model(input_ids=ids, labels=ids).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
        return self.weights(), losses

    def weights(self) -> LoraWeights:
        factors: dict[str, list[Any]] = {}
        for name, parameter in self.lora_parameters.items():
            module, _, rest = name.partition(".lora_")
            module = module.removeprefix(PEFT_PREFIX)
            factors.setdefault(module, [None, None])[0 if rest.startswith("A") else 1] = parameter.detach().clone()
        return LoraWeights(factors={n: (a, b) for n, (a, b) in factors.items()}, scaling=self.settings.scaling)


def train_missing(passages: list[Passage], *, store: LoraStore, trainer_factory: Any, augment: Any,
                  texts_of: Any, chunk: int = 32) -> int:
    """Train and store the LoRA of every passage the store lacks, augmenting ``chunk``
    passages per generator call (enough prompts for a generator to decode several batches side
    by side and to group prompts of similar length); the number trained."""
    todo = [p for p in {p.id: p for p in passages}.values() if not store.has(p)]
    if not todo:
        return 0
    trainer = trainer_factory()
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        for passage, item in zip(part, augment(part), strict=True):
            _train_one(passage, item, trainer, store, texts_of)
    return len(todo)


def _train_one(passage: Passage, item: Any, trainer: PassageLoraTrainer, store: LoraStore, texts_of: Any) -> None:
    began = time.perf_counter()
    weights, losses = trainer.train(texts_of(item))
    train_seconds = time.perf_counter() - began
    store.save(passage, weights, {"offline_seconds": round(item.seconds + train_seconds, 4),
                                  "augment_seconds": item.seconds, "train_seconds": round(train_seconds, 4),
                                  "examples": len(losses), "losses": [round(x, 4) for x in losses],
                                  "qa_pairs": len(item.qa), "rejected": item.rejected})
