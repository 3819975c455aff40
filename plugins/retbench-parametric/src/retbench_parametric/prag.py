"""The ``prag`` and ``prag-combine`` injectors (Su et al., 2025, Parametric RAG).

Each retrieved passage becomes a LoRA (augmented by the generator, then trained, see
``lora``); at answer time the passages' LoRAs are summed into the model and the question is
answered without the passages (``prag``) or with them in the prompt too (``prag-combine``).
LoRAs are stored per passage under the injector's cache root, keyed by the base model and
the recipe, so ``prag``, ``prag-combine`` and DyPRAG's training data share them.

Training texts are what the reader sees at answer time (reference ``src/encode.py``
``get_train_data``): the reader's own prompt through the generator's chat template, with the
answer turn "The answer is {answer}.". Of a passage's n QA pairs the first ⌈n/2⌉ appear with
each variant of the passage (original and rewrites) in the prompt, the rest with no passage:
exactly the prompt PRAG answers with.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from retbench import Component, ConfigError, Injection, Passage, component_identity, constructor_parameters
from retbench_parametric.augment import AugmentedPassage, PassageAugmenter
from retbench_parametric.lora import (
    LoraSettings,
    LoraStore,
    PassageLoraTrainer,
    store_folder,
    train_missing,
)

def training_texts(item: AugmentedPassage, reader: Any) -> list[str]:
    """PRAG's training texts for one augmented passage, in the reader's answer format."""
    variants = [Passage(item.passage_id, variant) for variant in item.variants]
    with_passage = (len(item.qa) + 1) // 2
    texts = []
    for number, qa in enumerate(item.qa):
        contexts = [[variant] for variant in variants] if number < with_passage else [[]]
        texts += [reader.training_text(qa["question"], context, qa["answer"]) for context in contexts]
    return texts


def training_format(reader: Any) -> dict[str, Any]:
    """What shapes the training texts besides the generator (a LoRA store key part): the
    reader's prompt and answer turn, not its name, so ``prag`` and ``dyprag`` share LoRAs."""
    return {"template": reader.prompt_text("{question}", [Passage("p", "{passage}")]),
            "answer": reader.training_text("{question}", [], "{answer}")}


def generator_of(reader: Any, injector: str) -> Any:
    """The reader's local generator, which must expose its (model, tokenizer) through ``load``."""
    generator = getattr(reader, "generator_", None)
    if generator is None or not hasattr(generator, "load"):
        name = getattr(generator, "name", None)
        raise ConfigError(f"{injector}: needs a reader with a local generator (e.g. --generator hf) whose weights it "
                          f"can change; got {name or 'none'}")
    return generator


class PragRecipe:
    """How passages become LoRAs: the settings (constructor parameters of the injectors)
    and the shared store."""

    name: ClassVar[str]
    rewrites: int
    qa_pairs: int
    rank: int
    alpha: float
    dropout: float
    learning_rate: float
    epochs: int
    targets: list[str]
    max_length: int
    seed: int
    generator_requires = frozenset({"lora"})

    def set_recipe(self, *, rewrites: int, qa_pairs: int, augment_args: dict[str, Any] | None, rank: int,
                   alpha: float, dropout: float, learning_rate: float, epochs: int, targets: list[str] | None,
                   max_length: int, seed: int) -> None:
        """Store the recipe parameters (the injectors' constructors take them under these names)."""
        self.rewrites = rewrites
        self.qa_pairs = qa_pairs
        self.augment_args = augment_args
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.targets = targets or ["gate_proj", "up_proj", "down_proj"]
        self.max_length = max_length
        self.seed = seed

    def set_augment_generator(self, generator: Any) -> None:
        """The generator that augments passages (default: the reader's own)."""
        self.augment_generator_ = generator

    def augment_generator(self, generator: Any) -> Any:
        return getattr(self, "augment_generator_", None) or generator

    def validate(self) -> None:
        """Check the recipe before any model loads."""
        self.augmenter()
        if self.rank < 1 or self.epochs < 0 or self.max_length < 1:
            raise ConfigError(f"{self.name}: rank >= 1, epochs >= 0 and max_length >= 1 required")

    def lora_settings(self) -> LoraSettings:
        return LoraSettings(rank=self.rank, alpha=self.alpha, dropout=self.dropout, learning_rate=self.learning_rate,
                            epochs=self.epochs, targets=tuple(self.targets), max_length=self.max_length,
                            seed=self.seed)

    def augmenter(self) -> PassageAugmenter:
        """The passage augmenter; ``augment_args`` sets its other parameters (its prompts,
        generation lengths)."""
        args = dict(self.augment_args or {})
        allowed = set(constructor_parameters(PassageAugmenter)) - {"rewrites", "qa_pairs"}
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise ConfigError(f"{self.name}: augment_args {unknown} unknown; it takes {sorted(allowed)}")
        return PassageAugmenter(rewrites=self.rewrites, qa_pairs=self.qa_pairs, **args)

    def lora_store(self, generator: Any, reader: Any, inject_dir: Path) -> LoraStore:
        augmenter = self.augmenter()
        return LoraStore(store_folder(
            inject_dir.parent, generator_identity=component_identity(generator), settings=self.lora_settings(),
            augmenter={"name": augmenter.name, "version": augmenter.version, "params": augmenter.get_params(),
                       "generator": component_identity(self.augment_generator(generator))},
            training_format=training_format(reader)))

    def augment(self, passages: Sequence[Passage], *, generator: Any, inject_dir: Path) -> list[AugmentedPassage]:
        return self.augmenter().augment_passages(passages, generator=self.augment_generator(generator),
                                                 root=inject_dir.parent / "prag-augment")

    def ensure_loras(self, passages: Sequence[Passage], *, reader: Any, inject_dir: Path) -> LoraStore:
        """The store, holding a LoRA for every passage (the missing ones trained first)."""
        generator = generator_of(reader, self.name)
        store = self.lora_store(generator, reader, inject_dir)

        def trainer() -> PassageLoraTrainer:
            if getattr(self, "trainer_", None) is None or self.trainer_generator_ is not generator:
                model, _ = generator.load()
                self.trainer_ = PassageLoraTrainer(model, generator.encode, self.lora_settings())
                self.trainer_generator_ = generator
            return self.trainer_

        self.trained_ = getattr(self, "trained_", 0) + train_missing(
            list(passages), store=store, trainer_factory=trainer,
            augment=lambda part: self.augment(part, generator=generator, inject_dir=inject_dir),
            texts_of=lambda item: training_texts(item, reader))
        return store


class PragInjector(PragRecipe, Component):
    name = "prag"
    version = "2"
    combine: ClassVar[bool] = False

    def __init__(self, rewrites: int = 1, qa_pairs: int = 3, augment_args: dict[str, Any] | None = None,
                 rank: int = 2, alpha: float = 32.0,
                 dropout: float = 0.0, learning_rate: float = 3e-4, epochs: int = 1,
                 targets: list[str] | None = None, max_length: int = 3000, seed: int = 0) -> None:
        self.set_recipe(rewrites=rewrites, qa_pairs=qa_pairs, augment_args=augment_args, rank=rank, alpha=alpha,
                        dropout=dropout, learning_rate=learning_rate, epochs=epochs, targets=targets,
                        max_length=max_length, seed=seed)

    def prepare(self, passages: Sequence[Passage], *, reader: Any, workdir: Path) -> Injection:
        store = self.ensure_loras(passages, reader=reader, inject_dir=workdir)
        began = time.perf_counter()
        loras = [store.load(p) for p in passages]
        loaded = time.perf_counter() - began
        return Injection(
            kind=self.name,
            passages=list(passages) if self.combine else [],
            payload=[lora.weights for lora in loras],
            nbytes=sum(lora.nbytes for lora in loras),
            cost={"online_seconds": {"load": loaded},
                  "artefacts": {p.id: {"offline_seconds": lora.offline_seconds, "bytes": lora.nbytes}
                                for p, lora in zip(passages, loras)}},
        )


class PragCombineInjector(PragInjector):
    """PRAG's LoRAs merged and the passages in the prompt as well."""

    name = "prag-combine"
    combine = True
