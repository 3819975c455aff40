"""Hard-concrete masks and their Lagrangian constraint (Louizos et al., 2018, as Sheared-LLaMA
uses them: ``llmshearing/models/l0_module.py``).

Each prunable unit (a layer, an attention head of a layer, an FFN intermediate dimension of a
layer, a hidden dimension) has a mask ``z`` in [0, 1]: sampled from a stretched, clipped
concrete distribution while training, deterministic at the end (the ``keep`` units with the
highest scores per row, the rest exactly 0). A Lagrangian term per mask kind pulls its
expected sparsity to the target's, which rises linearly from 0 over a warm-up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LIMIT_LOW, LIMIT_HIGH, EPSILON = -0.1, 1.1, 1e-6
TEMPERATURE = 2.0 / 3.0
INIT_MEAN, INIT_STD = 5.0, 1e-2  # l0_module.py: z_loga ~ N(5, 0.01), every mask starts near 1
SCORE_SHARPNESS = 0.8  # l0_module.py's "magical_number" in the deterministic score
LOG_ALPHA_RANGE = (math.log(1e-2), math.log(1e2))


class HardConcreteMask(nn.Module):
    """Masks of shape ``(rows, units)``; ``keep`` units per row survive the final selection.
    ``groups`` > 1 keeps ``keep / groups`` units in each of ``groups`` equal blocks of a row
    (query heads sharing a key/value head, so grouped-query attention stays regular)."""

    def __init__(self, rows: int, units: int, keep: int, *, groups: int = 1) -> None:
        super().__init__()
        if not 0 < keep <= units or keep % groups or units % groups:
            raise ValueError(f"cannot keep {keep} of {units} units in {groups} equal groups")
        self.units, self.keep, self.groups = units, keep, groups
        self.log_alpha = nn.Parameter(torch.empty(rows, units).normal_(INIT_MEAN, INIT_STD))

    @property
    def target_sparsity(self) -> float:
        return 1.0 - self.keep / self.units

    def sample(self) -> torch.Tensor:
        noise = torch.empty_like(self.log_alpha).uniform_(EPSILON, 1 - EPSILON)
        soft = torch.sigmoid((noise.log() - (1 - noise).log() + self.log_alpha) / TEMPERATURE)
        return (soft * (LIMIT_HIGH - LIMIT_LOW) + LIMIT_LOW).clamp(0.0, 1.0)

    def keep_probability(self) -> torch.Tensor:
        """P(z > 0) per unit: one minus the stretched distribution's CDF at 0."""
        shift = math.log(-LIMIT_LOW / LIMIT_HIGH)
        return 1 - torch.sigmoid(shift * TEMPERATURE - self.log_alpha).clamp(EPSILON, 1 - EPSILON)

    def expected_sparsity(self) -> torch.Tensor:
        """Per row: the expected share of units masked."""
        return 1 - self.keep_probability().sum(-1) / self.units

    def deterministic(self) -> torch.Tensor:
        """The final masks: each row's ``keep`` best scores (per group), the others 0."""
        score = torch.sigmoid(self.log_alpha.detach() / TEMPERATURE * SCORE_SHARPNESS)
        blocks = score.reshape(score.shape[0], self.groups, self.units // self.groups)
        top = blocks.topk(self.keep // self.groups, dim=-1).indices
        chosen = torch.zeros_like(blocks).scatter_(-1, top, 1.0).reshape(score.shape)
        return score * chosen

    def forward(self) -> torch.Tensor:
        return self.sample() if self.training else self.deterministic()

    def constrain_(self) -> None:
        with torch.no_grad():
            self.log_alpha.clamp_(*LOG_ALPHA_RANGE)


@dataclass(frozen=True)
class Shape:
    """What a Llama-style model is made of, as far as pruning goes."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    hidden: int
    vocab: int
    tied_embeddings: bool

    def parameters(self) -> int:
        """Weights of a model of this shape (norms and embeddings included)."""
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        mlp = 3 * self.hidden * self.intermediate
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * (attention + mlp + 2 * self.hidden) + self.hidden + embeddings

    def non_embedding_parameters(self) -> int:
        return self.parameters() - self.vocab * self.hidden * (1 if self.tied_embeddings else 2)


KINDS = ("layer", "head", "intermediate", "hidden")  # pruning.sh: pruning_modules=[head,intermediate,layer,hidden]


class PruningMasks(nn.Module):
    """The four mask kinds for ``source`` pruned to ``target``, with their Lagrange multipliers
    (two per kind: a linear and a quadratic term, ``l0_module.py:_lag_loss``)."""

    def __init__(self, source: Shape, target: Shape) -> None:
        super().__init__()
        if target.kv_heads != source.kv_heads or target.head_dim != source.head_dim:
            raise ValueError("key/value heads and the head dimension are not pruned")
        groups = source.kv_heads if source.kv_heads < source.heads else 1
        self.masks = nn.ModuleDict({
            "layer": HardConcreteMask(1, source.layers, target.layers),
            "head": HardConcreteMask(source.layers, source.heads, target.heads, groups=groups),
            "intermediate": HardConcreteMask(source.layers, source.intermediate, target.intermediate),
            "hidden": HardConcreteMask(1, source.hidden, target.hidden),
        })
        self.lambdas = nn.ParameterDict({f"{k}_{n}": nn.Parameter(torch.zeros(())) for k in KINDS for n in (1, 2)})

    def forward(self) -> dict[str, torch.Tensor]:
        for mask in self.masks.values():
            mask.constrain_()
        return {kind: mask() for kind, mask in self.masks.items()}

    def lagrangian(self, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The constraint term at ``progress`` (0 to 1) of the sparsity warm-up, and per kind the
        expected and target sparsity."""
        total = torch.zeros(())
        report = {}
        for kind, mask in self.masks.items():
            target = mask.target_sparsity * min(1.0, progress)
            gap = mask.expected_sparsity() - target
            total = total + (self.lambdas[f"{kind}_1"] * gap + self.lambdas[f"{kind}_2"] * gap**2).mean()
            report[f"{kind}_expected_sparsity"] = float(mask.expected_sparsity().detach().mean())
            report[f"{kind}_target_sparsity"] = target
        return total, report
