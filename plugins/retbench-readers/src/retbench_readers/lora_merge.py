"""Merging LoRA updates into a model's weights for one call, and restoring them exactly.

Summing the LoRAs of several passages is what PRAG does at answer time (equivalent to
concatenating their factors into one LoRA of rank r x n). Merging and unmerging through
subtraction would not give the original weights back bit for bit in floating point, so each
touched weight gets a new tensor W + delta while the original tensor is kept aside and put back. Written by hand: peft merges
adapters it manages itself, while these factors come from a disk cache or a hypernetwork.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from retbench import ConfigError, LoraWeights


def lora_deltas(model: Any, payload: Sequence[LoraWeights]) -> dict[str, Any]:
    """{module name: summed ``scaling * B @ A``} in each module's weight dtype and device."""
    import torch

    modules = dict(model.named_modules())
    deltas: dict[str, Any] = {}
    for weights in payload:
        for name, (a, b) in weights.factors.items():
            module = modules.get(name)
            if module is None or not hasattr(module, "weight"):
                raise ConfigError(f"LoRA names module '{name}', which the model does not have "
                                  f"(LoRAs made for another base model?)")
            weight = module.weight
            a = torch.as_tensor(a).to(device=weight.device, dtype=torch.float32)
            b = torch.as_tensor(b).to(device=weight.device, dtype=torch.float32)
            delta = weights.scaling * (b @ a)
            if delta.shape != weight.shape:
                raise ConfigError(f"LoRA for '{name}' has shape {tuple(delta.shape)}, the weight {tuple(weight.shape)}")
            deltas[name] = deltas[name] + delta if name in deltas else delta
    return {name: delta.to(modules[name].weight.dtype) for name, delta in deltas.items()}


@contextmanager
def merged_lora(model: Any, payload: Sequence[LoraWeights]) -> Iterator[None]:
    """Inside the block the model's weights carry every LoRA of ``payload``; afterwards they
    are exactly what they were (the original tensors are swapped back, untouched)."""
    modules = dict(model.named_modules())
    deltas = lora_deltas(model, payload)
    originals: dict[str, Any] = {}
    try:
        for name, delta in deltas.items():
            weight = modules[name].weight
            originals[name] = weight.data
            weight.data = originals[name] + delta
        yield
    finally:
        for name, original in originals.items():
            modules[name].weight.data = original
