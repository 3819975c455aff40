"""DyPRAG's parameter translator, and LoRAs applied through forward hooks.

As the paper (Tan et al., 2025, §3.2) and the reference (``src/projector.py``) define it: one
projector per (target module, layer), each with separate hypernetworks for A and for B,
Linear(h + 1 -> p) -> ReLU -> Linear(p -> r x dim), no biases, every weight drawn from
N(0, 1e-7) so the first LoRAs are ~0. The input is the passage embedding (the base model's
final hidden state of the passage's last token) with the raw layer index appended.

The projectors of one module kind are stacked into batched weight tensors (one bmm per kind
instead of one small matmul per layer); that is the same function, computed at once.

Generated LoRAs must stay differentiable while the base model is frozen, so training adds
them with forward hooks (``x @ A.T @ B.T * scaling`` on the module's output) instead of
merging them; written by hand, peft has no hook for externally computed factors.
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
INIT_STD = 1e-7


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
    """Per-(module, layer) A and B hypernetworks. For module kind ``k`` the parameters
    ``pre[k_A]`` (L, h + 1, p) and ``post[k_A]`` (L, p, r * in) give A, likewise ``k_B`` gives
    B with r * out outputs; row ``l`` is layer ``l``'s own projector."""

    def __init__(self, hidden: int, modules: list[tuple[str, int, str, int, int]], rank: int,
                 intermediate: int) -> None:
        super().__init__()
        self.modules_ = modules
        self.rank = rank
        self.layers = 1 + max(layer for _, layer, _, _, _ in modules)
        shapes = {kind: (fan_in, fan_out) for _, _, kind, fan_in, fan_out in modules}
        self.pre = nn.ParameterDict()
        self.post = nn.ParameterDict()
        for kind, (fan_in, fan_out) in shapes.items():
            for part, width in (("A", rank * fan_in), ("B", rank * fan_out)):
                self.pre[f"{kind}_{part}"] = nn.Parameter(torch.empty(self.layers, hidden + 1, intermediate))
                self.post[f"{kind}_{part}"] = nn.Parameter(torch.empty(self.layers, intermediate, width))
        for parameter in self.parameters():
            nn.init.normal_(parameter, std=INIT_STD)

    def forward(self, embeddings: torch.Tensor) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """One {module name: (A, B)} per row of ``embeddings`` (n, h)."""
        count = embeddings.shape[0]
        index = torch.arange(self.layers, dtype=embeddings.dtype, device=embeddings.device)
        features = torch.cat([embeddings.unsqueeze(0).expand(self.layers, -1, -1),
                              index.view(-1, 1, 1).expand(-1, count, 1)], dim=2)  # (L, n, h + 1)
        flat = {key: torch.bmm(torch.relu(torch.bmm(features, self.pre[key])), self.post[key]) for key in self.pre}
        out: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = [{} for _ in range(count)]
        for name, layer, kind, fan_in, fan_out in self.modules_:
            a = flat[f"{kind}_A"][layer].reshape(count, self.rank, fan_in)
            b = flat[f"{kind}_B"][layer].reshape(count, fan_out, self.rank)
            for row in range(count):
                out[row][name] = (a[row], b[row])
        return out


def averaged_factors(generated: list[dict[str, tuple[torch.Tensor, torch.Tensor]]]
                     ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The reference's merge of several passages' generated LoRAs: mean A and mean B per module."""
    return {name: (torch.stack([g[name][0] for g in generated]).mean(0),
                   torch.stack([g[name][1] for g in generated]).mean(0)) for name in generated[0]}


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


def passage_embeddings(model: Any, tokenizer: Any, texts: list[str], *, max_length: int,
                       batch_size: int = 8) -> torch.Tensor:
    """The final hidden state of each text's last token (the raw text, no chat template), in
    right-padded batches with explicit position ids, so padding changes nothing. Only the
    decoder runs: the language-model head is not needed."""
    device = next(model.parameters()).device
    decoder = model.base_model
    rows: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encoded = [tokenizer(texts[i], truncation=True, max_length=max_length)["input_ids"] for i in chunk]
            width = max(len(ids) for ids in encoded)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x in encoded], device=device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in encoded], device=device)
            positions = torch.arange(width, device=device).expand(len(chunk), -1)
            hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
            for row, (i, x) in enumerate(zip(chunk, encoded)):
                rows[i] = hidden[row, len(x) - 1].float()
    return torch.stack(rows)
