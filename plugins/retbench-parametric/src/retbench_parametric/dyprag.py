"""The ``dyprag`` and ``dyprag-combine`` injectors (Tan et al., 2025, Dynamic Parametric RAG).

``fit`` (``--fit-split``) builds the translator's training data by running PRAG on the
passages retrieved for the training questions (the same LoRA store as ``prag``), then trains
the translator with loss = ``lm_weight`` x LM loss of the model carrying the generated LoRA
on the passage's PRAG training texts + ``mse_weight`` x MSE to the PRAG LoRA + ``kl_weight``
x KL(PRAG-LoRA model's next-token distribution || generated-LoRA model's). Set a weight to 0
to drop that term. At answer time each passage costs one forward pass (embedding) and one
translator pass; the LoRAs are merged as in PRAG.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from retbench import Component, ConfigError, DatasetSplit, Injection, LoraWeights, Passage
from retbench.cache import atomic_write_json, stage_key
from retbench.component import component_identity
from retbench_parametric.augment import passage_digest, training_texts
from retbench_parametric.prag import TEMPLATE, PragRecipe, generator_of

if TYPE_CHECKING:  # the translator module imports torch, which plugin discovery must not pay for
    from retbench_parametric.translator import ParameterTranslator

CHECKPOINT = "translator.safetensors"
CONFIG = "translator.json"


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
    version = "1"
    combine: ClassVar[bool] = False
    needs_fit: ClassVar[bool] = True

    def __init__(self, intermediate_size: int = 32, lm_weight: float = 1.0, mse_weight: float = 100.0,
                 kl_weight: float = 0.01, translator_lr: float = 1e-3, translator_epochs: int = 1,
                 texts_per_passage: int | None = None, rewrites: int = 1, qa_pairs: int = 3,
                 augment_args: dict[str, Any] | None = None, rank: int = 2,
                 alpha: float = 32.0, dropout: float = 0.0, learning_rate: float = 3e-4, epochs: int = 1,
                 targets: list[str] | None = None, max_length: int = 512, seed: int = 0,
                 template: str = TEMPLATE) -> None:
        self.intermediate_size = intermediate_size
        self.lm_weight = lm_weight
        self.mse_weight = mse_weight
        self.kl_weight = kl_weight
        self.translator_lr = translator_lr
        self.translator_epochs = translator_epochs
        self.texts_per_passage = texts_per_passage
        self.set_recipe(rewrites=rewrites, qa_pairs=qa_pairs, augment_args=augment_args, rank=rank, alpha=alpha,
                        dropout=dropout, learning_rate=learning_rate, epochs=epochs, targets=targets,
                        max_length=max_length, seed=seed, template=template)

    def _translator(self, model: Any) -> ParameterTranslator:
        from retbench_parametric.translator import ParameterTranslator, target_modules

        return ParameterTranslator(model.config.hidden_size, target_modules(model, self.targets), self.rank,
                                   self.intermediate_size)

    def fit(self, train: DatasetSplit, *, retriever: Any, reader: Any, workdir: Path, seed: int,
            inject_dir: Path, k: int) -> dict[str, Any]:
        generator = generator_of(reader, self.name)
        passages = retrieved_passages(train, retriever, k)
        shared = self.translator_folder(generator, passages, seed, inject_dir)
        if (shared / "report.json").is_file():  # trained by the other DyPRAG variant
            for name in (CHECKPOINT, CONFIG):
                shutil.copyfile(shared / name, workdir / name)
            self.load_fit(workdir=workdir)
            return json.loads((shared / "report.json").read_text())
        report = self._train(passages, generator=generator, workdir=workdir, seed=seed, inject_dir=inject_dir)
        shared.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, CONFIG):
            shutil.copyfile(workdir / name, shared / name)
        atomic_write_json(shared / "report.json", report)
        return report

    def translator_folder(self, generator: Any, passages: list[Passage], seed: int, inject_dir: Path) -> Path:
        """Translators shared by ``dyprag`` and ``dyprag-combine``, keyed by the base model, every
        setting (rank, p, loss weights, ...), the training passages and the seed."""
        return inject_dir.parent / "dyprag-translators" / stage_key(
            generator=component_identity(generator), params=self.get_params(), version=self.version, seed=seed,
            passages=[passage_digest(p) for p in passages])[:24]

    def _train(self, passages: list[Passage], *, generator: Any, workdir: Path, seed: int,
               inject_dir: Path) -> dict[str, Any]:
        import torch
        from safetensors.torch import save_file

        from retbench_parametric.translator import passage_embeddings

        store = self.ensure_loras(passages, generator=generator, inject_dir=inject_dir)
        targets = [store.load(p) for p in passages]  # read once, reused every epoch
        prag_seconds = sum(t.offline_seconds for t in targets)  # also for LoRAs trained earlier
        items = self.augmenter().augment_passages(passages, generator=generator, root=inject_dir.parent / "prag-augment")
        model, tokenizer = generator.load()
        model.requires_grad_(False)
        embeddings = passage_embeddings(model, tokenizer, [p.contents(": ") for p in passages],
                                        max_length=self.max_length)
        torch.manual_seed(seed)
        translator = self._translator(model).to(embeddings.device)
        optimizer = torch.optim.AdamW(translator.parameters(), lr=self.translator_lr)
        order = list(range(len(passages)))
        curves: dict[str, list[float]] = {"loss": [], "lm": [], "mse": [], "kl": []}
        began = time.perf_counter()
        for epoch in range(self.translator_epochs):
            random.Random(seed + epoch).shuffle(order)
            for index in order:
                texts = training_texts(items[index], question_template=self.template)[: self.texts_per_passage]
                target = targets[index].weights
                terms = self._losses(translator(embeddings[index : index + 1])[0], target, texts, model, tokenizer)
                loss = (self.lm_weight * terms["lm"] + self.mse_weight * terms["mse"]
                        + self.kl_weight * terms["kl"])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                for name, value in [("loss", loss), *terms.items()]:
                    curves[name].append(round(float(value.detach()), 6))
        translate_seconds = time.perf_counter() - began
        save_file({n: t.detach().contiguous().cpu() for n, t in translator.state_dict().items()},
                  str(workdir / CHECKPOINT))
        (workdir / CONFIG).write_text(json.dumps({"hidden": model.config.hidden_size, "rank": self.rank,
                                                  "intermediate_size": self.intermediate_size}))
        self.translator_ = translator.eval()
        size = (workdir / CHECKPOINT).stat().st_size
        return {"passages": len(passages), "prag_seconds": round(prag_seconds, 2),
                "translator_seconds": round(translate_seconds, 2),
                "train_seconds": round(prag_seconds + translate_seconds, 2), "steps": len(curves["loss"]),
                "bytes": size, "translator_parameters": sum(p.numel() for p in translator.parameters()),
                "curves": curves, "weights": {"lm": self.lm_weight, "mse": self.mse_weight, "kl": self.kl_weight}}

    def _losses(self, generated: dict[str, tuple[Any, Any]], target: LoraWeights, texts: list[str], model: Any,
                tokenizer: Any) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        from retbench_parametric.translator import lora_hooks

        mse = sum(F.mse_loss(a, target.factors[n][0].to(a)) + F.mse_loss(b, target.factors[n][1].to(b))
                  for n, (a, b) in generated.items()) / (2 * len(generated))
        lm = kl = torch.zeros((), device=mse.device)
        device = mse.device
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_length)["input_ids"]
            ids = ids.to(device)
            with lora_hooks(model, generated, target.scaling):
                logits = model(input_ids=ids).logits[0, :-1].float()
            lm = lm + F.cross_entropy(logits, ids[0, 1:]) / len(texts)
            if self.kl_weight:
                with torch.no_grad(), lora_hooks(model, {n: (a.to(device), b.to(device))
                                                         for n, (a, b) in target.factors.items()}, target.scaling):
                    teacher = model(input_ids=ids).logits[0, :-1].float()
                kl = kl + F.kl_div(F.log_softmax(logits, -1), F.log_softmax(teacher, -1), log_target=True,
                                   reduction="batchmean") / len(texts)
        return {"lm": lm, "mse": mse, "kl": kl}

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

    def prepare(self, passages: Sequence[Passage], *, reader: Any, workdir: Path) -> Injection:
        import torch

        from retbench_parametric.translator import passage_embeddings

        generator = generator_of(reader, self.name)
        model, tokenizer = generator.load()
        translator = self.translator_for(model)
        began = time.perf_counter()
        embeddings = passage_embeddings(model, tokenizer, [p.contents(": ") for p in passages],
                                        max_length=self.max_length) if passages else None
        encoded = time.perf_counter()
        payload = []
        if embeddings is not None:
            with torch.no_grad():
                payload = [LoraWeights(factors={n: (a.detach(), b.detach()) for n, (a, b) in factors.items()},
                                       scaling=self.alpha / self.rank) for factors in translator(embeddings)]
        translated = time.perf_counter()
        return Injection(kind=self.name, passages=list(passages) if self.combine else [], payload=payload,
                         nbytes=sum(4 * (a.numel() + b.numel()) for w in payload for a, b in w.factors.values()),
                         cost={"online_seconds": {"encode": encoded - began, "translate": translated - encoded}})


class DyPragCombineInjector(DyPragInjector):
    """DyPRAG's generated LoRAs merged and the passages in the prompt as well."""

    name = "dyprag-combine"
    combine = True
