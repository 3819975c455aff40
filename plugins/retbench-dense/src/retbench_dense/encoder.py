"""A bi-encoder over any transformers model: pooling, prefixes, max lengths, normalisation,
Matryoshka truncation, shared or separate query and passage towers.

``embed`` keeps gradients (training); ``encode`` is the fast inference path: texts sorted by
length so each batch pads little, ``torch.inference_mode``, results back in input order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from retbench import ConfigError
from retbench_dense.settings import EncoderSettings, settings_from_json

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_bidirectional(model: torch.nn.Module) -> None:
    """Turn a decoder's causal self-attention into full attention (DRAMA, LLM2Vec): the
    config flag makes transformers build a bidirectional padding mask, the module flags stop
    SDPA from adding causality when no mask is needed."""
    model.config.is_causal = False
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False


DPR_CLASSES = ("DPRQuestionEncoder", "DPRContextEncoder")
UNUSED_WEIGHTS = ("pooler.",)  # BERT's pooler head: no pooling mode here reads it


def tower_class(config: Any) -> Any:
    """The class a checkpoint's config declares for DPR towers, else ``AutoModel``.

    ``AutoModel`` maps model type ``dpr`` to ``DPRQuestionEncoder``, which silently drops a
    ``DPRContextEncoder``'s weights; DPR towers are therefore loaded by their own class."""
    import transformers

    for architecture in getattr(config, "architectures", None) or ():
        if architecture in DPR_CLASSES:
            return getattr(transformers, architecture)
    if config.model_type == "dpr":
        raise ConfigError(f"DPR checkpoint declares architectures {config.architectures}; expected one of "
                          f"{', '.join(DPR_CLASSES)} (config.json 'architectures')")
    return AutoModel


def load_tower(path: str, *, revision: str | None, dtype: str, bidirectional: bool):
    """Model and tokenizer of one tower; a weight the checkpoint lacks is an error, never a
    silent random initialisation."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
    from transformers import AutoConfig
    from transformers.utils import logging

    logging.disable_progress_bar()  # weight-loading bars would clutter the harness's stderr
    kwargs = {"revision": revision} if revision else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    cls = tower_class(AutoConfig.from_pretrained(path, **kwargs))
    model, info = cls.from_pretrained(path, dtype=DTYPES[dtype], output_loading_info=True, **kwargs)
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith(UNUSED_WEIGHTS)]
    if missing:
        raise ConfigError(
            f"model '{path}': {len(missing)} weights of {type(model).__name__} are not in the checkpoint and "
            f"would be randomly initialised (e.g. {', '.join(sorted(missing)[:3])}); check config.json "
            f"'architectures' against the saved weights")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    if bidirectional:
        make_bidirectional(model)
    return model, tokenizer


class BiEncoder(torch.nn.Module):
    def __init__(self, query_model, query_tokenizer, passage_model=None, passage_tokenizer=None, *,
                 settings: EncoderSettings) -> None:
        super().__init__()
        self.query_model = query_model
        self.passage_model = passage_model
        self.query_tokenizer = query_tokenizer
        self.passage_tokenizer = passage_tokenizer or query_tokenizer
        self.settings = settings

    @property
    def shared(self) -> bool:
        return self.passage_model is None

    @property
    def device(self) -> torch.device:
        return next(self.query_model.parameters()).device

    def _side(self, side: str):
        if side == "query":
            return (self.query_model, self.query_tokenizer, self.settings.query_prefix,
                    self.settings.query_max_length)
        model = self.query_model if self.shared else self.passage_model
        return model, self.passage_tokenizer, self.settings.passage_prefix, self.settings.passage_max_length

    def embed(self, texts: Sequence[str], *, side: str) -> torch.Tensor:
        """Embeddings with gradients, shape (len(texts), width)."""
        return self.finish(self.pooled(texts, side=side), None)

    def pooled(self, texts: Sequence[str], *, side: str) -> torch.Tensor:
        """Pooled vectors at the model's full width, before truncation and normalisation."""
        model, tokenizer, prefix, max_length = self._side(side)
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions:  # never past what the model can read (BERT: 512)
            max_length = min(max_length, positions)
        batch = tokenizer([prefix + t for t in texts], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(self.device)
        output = model(**batch)
        hidden = getattr(output, "last_hidden_state", None)
        if hidden is None:  # DPR's encoders return their pooled [CLS] vector only
            return output.pooler_output
        return self._pool(hidden, batch["attention_mask"])

    def finish(self, vectors: torch.Tensor, dim: int | None) -> torch.Tensor:
        """The first ``dim`` components (Matryoshka), normalised if the settings say so."""
        if dim is not None:
            vectors = vectors[:, :dim]
        if self.settings.normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return vectors.float()

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.settings.pooling == "cls":
            return hidden[:, 0]
        if self.settings.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        last = mask.sum(1) - 1  # right padding: the last real token of each row
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def encode(self, texts: Sequence[str], *, side: str, batch_size: int) -> np.ndarray:
        """float32 embeddings in input order; batches of similar length, no gradients."""
        was_training = self.training
        self.eval()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = None
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), batch_size):
                    rows = order[start : start + batch_size]
                    vectors = self.embed([texts[i] for i in rows], side=side).cpu().numpy()
                    if out is None:
                        out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                    out[rows] = vectors
        finally:
            self.train(was_training)
        return out if out is not None else np.empty((0, 0), dtype=np.float32)

    def save(self, folder: Path) -> None:
        """Towers and tokenizers as transformers folders, plus the settings."""
        folder.mkdir(parents=True, exist_ok=True)
        towers = {"query": (self.query_model, self.query_tokenizer)}
        if not self.shared:
            towers["passage"] = (self.passage_model, self.passage_tokenizer)
        for name, (model, tokenizer) in towers.items():
            model.save_pretrained(folder / name, safe_serialization=True)
            tokenizer.save_pretrained(folder / name)
        (folder / "settings.json").write_text(json.dumps(asdict(self.settings), indent=1))

    @classmethod
    def load(cls, folder: Path, *, dtype: str, device: str) -> BiEncoder:
        settings = settings_from_json(json.loads((folder / "settings.json").read_text()))
        query = load_tower(str(folder / "query"), revision=None, dtype=dtype, bidirectional=settings.bidirectional)
        passage = (None, None)
        if (folder / "passage").is_dir():
            passage = load_tower(str(folder / "passage"), revision=None, dtype=dtype,
                                 bidirectional=settings.bidirectional)
        return cls(query[0], query[1], passage[0], passage[1], settings=settings).to(device)
