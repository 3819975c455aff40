"""DyPRAG's parameter translator, and LoRAs applied through forward hooks.

The translator maps a passage embedding (the base model's last-token final hidden state)
concatenated with a layer's index (divided by the number of layers) to the LoRA A and B of
every target module of that layer: one small MLP per module type (hidden + 1 -> p -> rank x
(in + out)), shared by all layers. Its LoRAs must stay differentiable while the base model
is frozen, so they are added with forward hooks (``x @ A.T @ B.T * scaling`` on the module's
output) rather than merged into weights; written by hand, peft has no hook for externally
computed factors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from retbench import ConfigError

LAYER = re.compile(r"\.layers\.(\d+)\.")


def target_modules(model: nn.Module, targets: list[str]) -> list[tuple[str, int, str, int, int]]:
    """(module name, layer index, module type, in features, out features) of every target."""
    found = []
    for name, module in model.named_modules():
        kind = name.rsplit(".", 1)[-1]
        layer = LAYER.search(name)
        if kind in targets and layer and isinstance(module, nn.Linear):
            found.append((name, int(layer.group(1)), kind, module.in_features, module.out_features))
    if not found:
        raise ConfigError(f"dyprag: the model has no linear modules named {targets} inside numbered layers")
    return found


class ParameterTranslator(nn.Module):
    def __init__(self, hidden: int, modules: list[tuple[str, int, str, int, int]], rank: int,
                 intermediate: int) -> None:
        super().__init__()
        self.modules_ = modules
        self.rank = rank
        self.layers = 1 + max(layer for _, layer, _, _, _ in modules)
        shapes = {kind: (fan_in, fan_out) for _, _, kind, fan_in, fan_out in modules}
        self.heads = nn.ModuleDict({
            kind: nn.Sequential(nn.Linear(hidden + 1, intermediate), nn.ReLU(),
                                nn.Linear(intermediate, rank * (fan_in + fan_out)))
            for kind, (fan_in, fan_out) in shapes.items()})
        for head in self.heads.values():  # start near "no change" so early LoRAs do not wreck the model
            nn.init.normal_(head[-1].weight, std=1e-3)
            nn.init.zeros_(head[-1].bias)

    def forward(self, embeddings: torch.Tensor) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """One {module name: (A, B)} per row of ``embeddings``."""
        count = embeddings.shape[0]
        per_layer = {}
        for layer in range(self.layers):
            index = torch.full((count, 1), layer / self.layers, dtype=embeddings.dtype, device=embeddings.device)
            features = torch.cat([embeddings, index], dim=1)
            per_layer[layer] = {kind: head(features) for kind, head in self.heads.items()}
        out: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = [{} for _ in range(count)]
        for name, layer, kind, fan_in, fan_out in self.modules_:
            flat = per_layer[layer][kind]
            a = flat[:, : self.rank * fan_in].reshape(count, self.rank, fan_in)
            b = flat[:, self.rank * fan_in :].reshape(count, fan_out, self.rank)
            for row in range(count):
                out[row][name] = (a[row], b[row])
        return out


@contextmanager
def lora_hooks(model: nn.Module, factors: dict[str, tuple[Any, Any]], scaling: float) -> Iterator[None]:
    """Inside the block, each named linear module's output gains ``scaling * x A^T B^T``
    (gradients flow into A and B)."""
    modules = dict(model.named_modules())
    handles = []

    def hook(a: torch.Tensor, b: torch.Tensor):
        return lambda module, inputs, output: output + scaling * ((inputs[0] @ a.T) @ b.T)

    try:
        for name, (a, b) in factors.items():
            handles.append(modules[name].register_forward_hook(hook(a, b)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def passage_embeddings(model: Any, tokenizer: Any, texts: list[str], *, max_length: int) -> torch.Tensor:
    """The final hidden state of each text's last token, one text at a time (no padding).
    Only the decoder runs: the language-model head (vocabulary x hidden per token) is not needed."""
    device = next(model.parameters()).device
    decoder = model.base_model
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)["input_ids"].to(device)
            rows.append(decoder(input_ids=ids).last_hidden_state[0, -1].float())
    return torch.stack(rows)
