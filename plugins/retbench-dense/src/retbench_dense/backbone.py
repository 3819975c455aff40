"""The size of a dense retriever's backbone for records (an MTEB-style model-size column):
parameters counted from the checkpoint's safetensors headers, without loading the weights; and
the provenance a model folder made by a retbench command carries (``retbench_model.json``, e.g.
from ``retbench prune``: shapes, parameter counts, perplexities)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _parameters(folder: Path) -> int | None:
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(str(file), framework="np") as handle:
            for name in handle.keys():
                count = 1
                for size in handle.get_slice(name).get_shape():
                    count *= size
                total += count
    return total


def backbone_size(model: Any, *, dim: int | None) -> dict[str, int | None]:
    """``parameters`` of the query tower and the ``embedding_dim`` searched with. ``model`` is a
    folder or a resolved model reference; a hub model not on disk reports ``None``."""
    folder = Path(getattr(model, "path", model))
    if not folder.is_dir():
        return {"parameters": None, "embedding_dim": dim}
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    width = config.get("projection_dim") or config.get("hidden_size")
    return {"parameters": _parameters(folder), "embedding_dim": min(dim, width) if dim and width else dim or width}


PROVENANCE = "retbench_model.json"
PROVENANCE_FIELDS = ("made_by", "init", "source_model", "source", "target", "perplexity", "seconds")


def provenance(model: Any) -> dict[str, Any] | None:
    """The summary of ``retbench_model.json`` in the model's folder, or None."""
    path = Path(getattr(model, "path", model)) / PROVENANCE
    if not path.is_file():
        return None
    made = json.loads(path.read_text())
    return {k: made[k] for k in PROVENANCE_FIELDS if k in made}
