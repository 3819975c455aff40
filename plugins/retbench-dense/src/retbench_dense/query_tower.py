"""A trainable copy of a bi-encoder's query tower, for training it against a fixed index.

REALM and ORQA fine-tune the question encoder while the passage vectors stay as indexed: the
retriever's score q . d enters the reader's likelihood, so gradients reach the query tower
only. :class:`QueryTower` maps texts to vectors in the index's space (the same pooling,
Matryoshka prefix and normalisation as the retriever's search) with gradients, and saves
itself as a bi-encoder folder holding one tower, which the retriever then encodes queries with.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import torch

from retbench_dense.encoder import BiEncoder


class QueryTower(torch.nn.Module):
    def __init__(self, encoder: BiEncoder, *, dim: int | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.dim = dim

    @classmethod
    def copy_of(cls, encoder: BiEncoder, *, dim: int | None) -> QueryTower:
        """A tower that starts as ``encoder``'s query side; ``encoder`` itself is not changed."""
        query = BiEncoder(copy.deepcopy(encoder.query_model), encoder.query_tokenizer, settings=encoder.settings)
        return cls(query, dim=dim)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """(len(texts), width) query vectors with gradients."""
        return self.encoder.finish(self.encoder.pooled(list(texts), side="query"), self.dim)

    def save(self, folder: Path) -> None:
        self.encoder.save(folder)
