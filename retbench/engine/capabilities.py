"""What a generator can do, what a component needs of one, and which generator each gets.

A generator declares ``capabilities`` (a class-level set of names below); a component that
needs more than ``generate`` declares ``generator_requires``. A run whose generator lacks a
requirement fails while components are being resolved, before any model is loaded, with one
line naming the component, the generator, what is missing and the installed generators that
have it.

A component that produces training data with a generator (an augmenter, SyNeg's negative
writer, PRAG's QA augmentation) defines ``set_augment_generator(generator)``; it receives the
``--augment-generator`` when one is given, else the run's generator. So a generator that
cannot answer for a component (``ct2`` cannot merge LoRA weights) can still write its data.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from retbench.errors import ConfigError

LORA = "lora"  # ``injected(list[LoraWeights])``: LoRA deltas merged into the weights for the calls inside
PREFIX = "prefix"  # ``generate(..., prefix=...)``: the answer is prefilled with this text
LOGLIKELIHOOD = "loglikelihood"  # ``loglikelihood(contexts, continuations)``

DESCRIPTIONS = {
    LORA: "merges LoRA weights into the model at answer time",
    PREFIX: "prefills answers (generate(prefix=...))",
    LOGLIKELIHOOD: "scores continuations (loglikelihood)",
}


def capabilities_of(generator: Any) -> frozenset[str]:
    """The generator's declared capabilities (none when it declares nothing)."""
    return frozenset(getattr(generator, "capabilities", ()) or ())


def check_generator(components: Iterable[tuple[str, Any]], generator: Any, *,
                    alternatives: Iterable[type] = ()) -> None:
    """Fail when one of ``(role, component)`` requires what ``generator`` lacks.

    ``alternatives`` are the installed generator classes; those having every missing
    capability are named in the message as the way out."""
    have = capabilities_of(generator)
    gen_name = getattr(generator, "name", type(generator).__name__)
    for role, component in components:
        required = frozenset(getattr(component, "generator_requires", ()) or ())
        missing = sorted(required - have)
        if component is None or not missing:
            continue
        others = sorted(c.name for c in alternatives if set(missing) <= capabilities_of(c) and c.name != gen_name)
        what = "; ".join(f"{m} ({DESCRIPTIONS.get(m, 'declared by the generator')})" for m in missing)
        name = getattr(component, "name", type(component).__name__)
        way_out = (f": answer with --generator {others[0]}, and keep '{gen_name}' for training data with "
                   f"--augment-generator {gen_name}") if others else ""
        raise ConfigError(f"{role} '{name}' needs a generator that can {what}; generator '{gen_name}' cannot"
                          f"{way_out}")


def hand_augment_generator(components: Iterable[Any], generator: Any) -> list[Any]:
    """Give ``generator`` to every component defining ``set_augment_generator``; return them."""
    takers = [c for c in components if c is not None and callable(getattr(c, "set_augment_generator", None))]
    for component in takers:
        component.set_augment_generator(generator)
    return takers


def wants_augment_generator(components: Iterable[Any]) -> bool:
    return any(c is not None and callable(getattr(c, "set_augment_generator", None)) for c in components)


def hand_generation_cache(components: Iterable[Any], folder: Path) -> None:
    """Give the run's shared generation cache to every component defining ``set_generation_cache``."""
    for component in components:
        if component is not None and callable(getattr(component, "set_generation_cache", None)):
            component.set_generation_cache(folder)
