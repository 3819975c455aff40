"""The ``dyprag`` and ``dyprag-combine`` injectors (Tan et al., 2025, Dynamic Parametric RAG).

``fit`` builds the translator's training data by running PRAG on the passages retrieved for
the training questions (the same LoRA store as ``prag``) and trains the translator as the
reference ``src/train_dyprag.py`` does: per passage, one step on loss = ``lm_weight`` x LM
loss of the model carrying the generated LoRA on the passage's first PRAG training text +
``mse_weight`` x MSE to the PRAG LoRA, summed over the A and B tensors + ``kl_weight`` x
KL(PRAG-LoRA model || generated-LoRA model), summed over positions. The reference right-pads
every text to ``max_length`` (3000) and its KL sum runs over the padding as well (``kl_positions=
"padded"``: those positions are estimated from ``kl_pad_samples`` of them, see ``kl_terms``). Without
``--fit-split`` the translator trains on ``default_fit`` (the papers' questions 300-499 of
the evaluated split, when the evaluation lies in its first 300). At answer time each passage
costs one forward pass (embedding) and the translator; the passages' generated factors are
averaged (mean A, mean B) into one LoRA, as the reference merges them.

``generated_scaling``: the reference applies generated factors unscaled (ΔW = B'A') while
its MSE pulls them toward PRAG factors that PRAG applies at alpha/rank; ``lora`` (default)
applies them at alpha/rank too, so MSE -> 0 means PRAG's own update; ``none`` is the
reference code's choice. See docs/methods/prag-dyprag.md.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from retbench import (
    Component,
    ConfigError,
    DatasetSplit,
    Injection,
    LoraWeights,
    Passage,
    atomic_write_json,
    component_identity,
    stage_key,
)
from retbench_parametric.augment import passage_digest
from retbench_parametric.prag import PragRecipe, generator_of, training_format, training_texts

if TYPE_CHECKING:  # the translator module imports torch, which plugin discovery must not pay for
    from retbench_parametric.translator import ParameterTranslator

CHECKPOINT = "translator.safetensors"
CONFIG = "translator.json"
PROGRESS = "translator-progress.pt"  # translator, optimizer and curves every checkpoint_every steps
SCALINGS = ("lora", "none")
KL_POSITIONS = ("padded", "text")


def retrieved_passages(train: DatasetSplit, retriever: Any, k: int) -> list[Passage]:
    """The unique passages in the top ``k`` of every training question, in first-seen order."""
    if retriever is None:
        raise ConfigError("dyprag: training the translator needs passages: give --retriever")
    run = retriever.search(dict(train.queries), k=k)
    ids: dict[str, None] = {}
    for qid in train.queries:
        for doc, _ in sorted(run.get(qid, {}).items(), key=lambda x: -x[1])[:k]:
            ids.setdefault(doc, None)
    return train.corpus.get(list(ids))


class DyPragInjector(PragRecipe, Component):
    name = "dyprag"
    version = "2"
    combine: ClassVar[bool] = False
    needs_fit: ClassVar[bool] = True
    # (questions the translator trains on, questions they are disjoint from), as slices of
    # the evaluated split: the papers train on questions 300-499 and test on the first 300.
    default_fit: ClassVar[tuple[tuple[int, int], tuple[int, int]]] = ((300, 500), (0, 300))
    late_params: ClassVar[tuple[str, ...]] = ("checkpoint_every",)

    def __init__(self, intermediate_size: int = 32, lm_weight: float = 1.0, mse_weight: float = 100.0,
                 kl_weight: float = 0.01, translator_lr: float = 1e-5, translator_epochs: int = 1,
                 texts_per_passage: int = 1, generated_scaling: str = "lora", kl_positions: str = "padded",
                 kl_pad_samples: int = 16, rewrites: int = 1, qa_pairs: int = 3,
                 augment_args: dict[str, Any] | None = None, rank: int = 2,
                 alpha: float = 32.0, dropout: float = 0.0, learning_rate: float = 3e-4, epochs: int = 1,
                 targets: list[str] | None = None, max_length: int = 3000, seed: int = 0,
                 checkpoint_every: int = 50) -> None:
        self.intermediate_size = intermediate_size
        self.checkpoint_every = checkpoint_every
        self.lm_weight = lm_weight
        self.mse_weight = mse_weight
        self.kl_weight = kl_weight
        self.translator_lr = translator_lr
        self.translator_epochs = translator_epochs
        self.texts_per_passage = texts_per_passage
        self.generated_scaling = generated_scaling
        self.kl_positions = kl_positions
        self.kl_pad_samples = kl_pad_samples
        self.set_recipe(rewrites=rewrites, qa_pairs=qa_pairs, augment_args=augment_args, rank=rank, alpha=alpha,
                        dropout=dropout, learning_rate=learning_rate, epochs=epochs, targets=targets,
                        max_length=max_length, seed=seed)

    def validate(self) -> None:
        super().validate()
        if self.generated_scaling not in SCALINGS:
            raise ConfigError(f"{self.name}: generated_scaling must be one of {', '.join(SCALINGS)}, "
                              f"got '{self.generated_scaling}'")
        if self.kl_positions not in KL_POSITIONS:
            raise ConfigError(f"{self.name}: kl_positions must be one of {', '.join(KL_POSITIONS)}, "
                              f"got '{self.kl_positions}'")
        if min(self.texts_per_passage, self.intermediate_size, self.checkpoint_every, self.kl_pad_samples) < 1:
            raise ConfigError(f"{self.name}: texts_per_passage, intermediate_size, checkpoint_every and "
                              "kl_pad_samples must be >= 1")

    @property
    def generated_scaling_(self) -> float:
        """The factor generated LoRAs are applied with, in training and at answer time."""
        return self.alpha / self.rank if self.generated_scaling == "lora" else 1.0

    def _translator(self, model: Any) -> ParameterTranslator:
        from retbench_parametric.translator import ParameterTranslator, target_modules

        return ParameterTranslator(model.config.hidden_size, target_modules(model, self.targets), self.rank,
                                   self.intermediate_size)

    def fit(self, train: DatasetSplit, *, retriever: Any, reader: Any, workdir: Path, seed: int,
            inject_dir: Path, k: int) -> dict[str, Any]:
        generator = generator_of(reader, self.name)
        passages = retrieved_passages(train, retriever, k)
        shared = self.translator_folder(generator, reader, passages, seed, inject_dir)
        if (shared / "report.json").is_file():  # trained by the other DyPRAG variant
            for name in (CHECKPOINT, CONFIG):
                shutil.copyfile(shared / name, workdir / name)
            self.load_fit(workdir=workdir)
            return json.loads((shared / "report.json").read_text())
        report = self._train(passages, reader=reader, workdir=workdir, seed=seed, inject_dir=inject_dir)
        shared.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, CONFIG):
            shutil.copyfile(workdir / name, shared / name)
        atomic_write_json(shared / "report.json", report)
        return report

    def translator_folder(self, generator: Any, reader: Any, passages: list[Passage], seed: int,
                          inject_dir: Path) -> Path:
        """Translators shared by ``dyprag`` and ``dyprag-combine``, keyed by the base model, the
        generator that wrote the QA pairs, every setting, the training format, the training passages
        and the seed."""
        return inject_dir.parent / "dyprag-translators" / stage_key(
            generator=component_identity(generator), augment=component_identity(self.augment_generator(generator)),
            params=self.get_params(), version=self.version, seed=seed,
            training_format=training_format(reader), passages=[passage_digest(p) for p in passages])[:24]

    def _train(self, passages: list[Passage], *, reader: Any, workdir: Path, seed: int,
               inject_dir: Path) -> dict[str, Any]:
        import torch
        from safetensors.torch import save_file

        from retbench_parametric.translator import passage_embeddings

        generator = generator_of(reader, self.name)
        store = self.ensure_loras(passages, reader=reader, inject_dir=inject_dir)
        items = self.augment(passages, generator=generator, inject_dir=inject_dir)
        usable = [i for i, item in enumerate(items) if item.qa]  # the reference drops passages without QA
        if not usable:
            raise ConfigError(f"{self.name}: none of the {len(passages)} training passages got a QA pair")
        loaded = [store.load(p) for p in passages]  # read once, reused every epoch
        targets = {i: loaded[i] for i in usable}
        prag_seconds = sum(lora.offline_seconds for lora in loaded)
        texts = {i: training_texts(items[i], reader)[: self.texts_per_passage] for i in usable}
        model, tokenizer = generator.load()
        model.requires_grad_(False)
        embeddings = passage_embeddings(model, tokenizer, [p.contents(": ") for p in passages],
                                        max_length=self.max_length)
        torch.manual_seed(seed)
        translator = self._translator(model).to(embeddings.device)
        optimizer = torch.optim.AdamW(translator.parameters(), lr=self.translator_lr)
        order = list(usable)
        curves: dict[str, list[float]] = {"loss": [], "lm": [], "mse": [], "kl": [], "teacher_lm": []}
        progress_file = workdir / PROGRESS
        done, earlier_seconds = 0, 0.0
        if progress_file.is_file():  # an interrupted training: continue after its last checkpoint
            saved = torch.load(progress_file, weights_only=False)
            translator.load_state_dict(saved["translator"])
            optimizer.load_state_dict(saved["optimizer"])
            done, curves, earlier_seconds = saved["steps"], saved["curves"], saved["seconds"]
        began = time.perf_counter()
        step = 0
        for epoch in range(self.translator_epochs):
            random.Random(seed + epoch).shuffle(order)
            for index in order:
                step += 1
                if step <= done:
                    continue
                generated = translator(embeddings[index : index + 1])[0]
                terms = self.losses(generated, targets[index].weights, texts[index], model, generator)
                loss = (self.lm_weight * terms["lm"] + self.mse_weight * terms["mse"]
                        + self.kl_weight * terms["kl"])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                for name, value in [("loss", loss), *terms.items()]:
                    curves[name].append(round(float(value.detach()), 6))
                if step % self.checkpoint_every == 0:
                    tmp = progress_file.with_suffix(".tmp")
                    torch.save({"translator": translator.state_dict(), "optimizer": optimizer.state_dict(),
                                "steps": step, "curves": curves,
                                "seconds": earlier_seconds + time.perf_counter() - began}, tmp)
                    tmp.replace(progress_file)
        translate_seconds = earlier_seconds + time.perf_counter() - began
        save_file({n: t.detach().contiguous().cpu() for n, t in translator.state_dict().items()},
                  str(workdir / CHECKPOINT))
        (workdir / CONFIG).write_text(json.dumps({"hidden": model.config.hidden_size, "rank": self.rank,
                                                  "intermediate_size": self.intermediate_size}))
        progress_file.unlink(missing_ok=True)
        self.translator_ = translator.eval()
        size = (workdir / CHECKPOINT).stat().st_size
        return {"passages": len(passages), "trained_on": len(usable), "skipped_without_qa": len(passages) - len(usable),
                "prag_seconds": round(prag_seconds, 2), "translator_seconds": round(translate_seconds, 2),
                "train_seconds": round(prag_seconds + translate_seconds, 2), "steps": len(curves["loss"]),
                "bytes": size, "prag_bytes": sum(targets[i].nbytes for i in usable),
                "translator_parameters": sum(p.numel() for p in translator.parameters()),
                "curves": curves, "weights": {"lm": self.lm_weight, "mse": self.mse_weight, "kl": self.kl_weight},
                "generated_scaling": self.generated_scaling_}

    def losses(self, generated: dict[str, tuple[Any, Any]], target: LoraWeights, texts: list[str], model: Any,
               generator: Any) -> dict[str, Any]:
        """The three loss terms for one passage (and the teacher's LM loss, for the log)."""
        import torch
        import torch.nn.functional as F

        from retbench_parametric.translator import lora_hooks

        mse = sum(F.mse_loss(a, target.factors[n][0].to(a)) + F.mse_loss(b, target.factors[n][1].to(b))
                  for n, (a, b) in generated.items())
        device = mse.device
        lm = kl = teacher_lm = torch.zeros((), device=device)
        teacher_factors = {n: (a.to(device), b.to(device)) for n, (a, b) in target.factors.items()}
        eos = generator.load()[1].eos_token_id
        pad = eos if eos is not None else 0  # the reference pads with EOS, or id 0 without one
        for text in texts:
            ids = generator.encode(text, self.max_length)
            inputs, weights = self.kl_inputs(ids, pad, device)
            with lora_hooks(model, generated, self.generated_scaling_):
                logits = model(**inputs).logits[0].float()
            with torch.no_grad(), lora_hooks(model, teacher_factors, target.scaling):
                teacher = model(**inputs).logits[0].float()
            labels = inputs["input_ids"][0, 1 : len(ids)]
            lm = lm + F.cross_entropy(logits[: len(ids) - 1], labels) / len(texts)
            teacher_lm = teacher_lm + F.cross_entropy(teacher[: len(ids) - 1], labels) / len(texts)
            per_position = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(teacher, -1), log_target=True,
                                    reduction="none").sum(-1)
            kl = kl + (per_position * weights).sum() / len(texts)
        return {"lm": lm, "mse": mse, "kl": kl, "teacher_lm": teacher_lm}

    def kl_inputs(self, ids: list[int], pad: int, device: Any) -> tuple[dict[str, Any], Any]:
        """The model inputs for one training text and the KL weight of each of their positions.

        ``text``: the text's positions that predict a next token of it. ``padded``: what the
        reference sums, every position of the text right-padded with ``pad`` to ``max_length``
        under an attention mask that hides the padding. A padding position's output depends
        only on the text and its own position id (it sees no other padding), so the padding's
        share is estimated from ``kl_pad_samples`` padding tokens placed at the midpoints
        of equal strata of the padded positions, each weighted by its stratum's size; with no more
        padding positions than samples every one is present and the sum is the reference's.
        """
        import torch

        length = len(ids)
        if self.kl_positions == "text":
            weights = torch.ones(length, device=device)
            weights[-1] = 0.0  # the last token predicts nothing of the text
            return {"input_ids": torch.tensor([ids], device=device)}, weights
        padding = max(self.max_length - length, 0)
        strata = min(padding, self.kl_pad_samples)
        bounds = torch.linspace(0, padding, strata + 1, dtype=torch.float64).round().long().tolist()
        positions = [length + (lo + hi - 1) // 2 for lo, hi in zip(bounds, bounds[1:])]
        sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
        inputs = {"input_ids": torch.tensor([ids + [pad] * strata], device=device),
                  "attention_mask": torch.tensor([[1] * length + [0] * strata], device=device),
                  "position_ids": torch.tensor([list(range(length)) + positions], device=device)}
        return inputs, torch.tensor([1.0] * length + [float(n) for n in sizes], device=device)

    def load_fit(self, *, workdir: Path) -> None:
        from safetensors.torch import load_file

        settings = json.loads((workdir / CONFIG).read_text())
        self.translator_state_ = load_file(str(workdir / CHECKPOINT))
        self.translator_settings_ = settings
        self.translator_ = None

    def translator_for(self, model: Any) -> ParameterTranslator:
        if getattr(self, "translator_", None) is None:
            if getattr(self, "translator_state_", None) is None:
                raise ConfigError("dyprag: the translator is not trained: give --fit-split")
            translator = self._translator(model)
            translator.load_state_dict(self.translator_state_)
            self.translator_ = translator.to(next(model.parameters()).device).eval()
        return self.translator_

    def generated_lora(self, passages: Sequence[Passage], generator: Any) -> tuple[LoraWeights | None, dict[str, float]]:
        """The passages' averaged generated LoRA, and the seconds spent encoding and translating."""
        import torch

        from retbench_parametric.translator import averaged_factors, passage_embeddings

        if not passages:
            return None, {"encode": 0.0, "translate": 0.0}
        model, tokenizer = generator.load()
        translator = self.translator_for(model)
        began = time.perf_counter()
        embeddings = passage_embeddings(model, tokenizer, [p.contents(": ") for p in passages],
                                        max_length=self.max_length)
        encoded = time.perf_counter()
        with torch.no_grad():
            factors = averaged_factors(translator(embeddings))
        lora = LoraWeights(factors={n: (a.detach(), b.detach()) for n, (a, b) in factors.items()},
                           scaling=self.generated_scaling_)
        return lora, {"encode": encoded - began, "translate": time.perf_counter() - encoded}

    def prepare(self, passages: Sequence[Passage], *, reader: Any, workdir: Path) -> Injection:
        generator = generator_of(reader, self.name)
        lora, seconds = self.generated_lora(passages, generator)
        payload = [lora] if lora is not None else []
        return Injection(kind=self.name, passages=list(passages) if self.combine else [], payload=payload,
                         nbytes=sum(4 * (a.numel() + b.numel()) for w in payload for a, b in w.factors.values()),
                         cost={"online_seconds": seconds})


class DyPragCombineInjector(DyPragInjector):
    """DyPRAG's generated LoRA merged and the passages in the prompt as well."""

    name = "dyprag-combine"
    combine = True
