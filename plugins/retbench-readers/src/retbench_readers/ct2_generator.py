"""The ``ct2`` generator: a causal LM run by CTranslate2, several times faster than transformers
on CPU (int8), and float32 for answers that match ``hf``'s.

The transformers checkpoint (hub id, folder or offline package, as ``hf`` takes it) is
converted once into ``$RETBENCH_HOME/models/ct2/``, in a folder keyed by the source's
revision and the compute type, under a file lock. Prompts are formatted and tokenized by the
same :class:`ChatFormat` as ``hf``, so both engines see the same tokens; generation stops at the
checkpoint's end-of-sequence tokens (its generation config's, as ``hf`` does), at
``max_new_tokens``, or at a stop string (checked on the decoded text after every token).
``loglikelihood`` uses CTranslate2's scoring. LoRA injection (PRAG / DyPRAG answering) is
not possible: CTranslate2 models are compiled, so ``capabilities`` leaves ``lora`` out.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from retbench import LOGLIKELIHOOD, PREFIX, Component, ConfigError, ModelRef, default_home, network_available
from retbench_readers.chat_format import AUTO, ChatFormat, scoring_ids
from retbench_readers.hf_generator import cut_at_stop
from retbench_readers.one_model import OneModel

COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32")
INSTALL = "pip install ctranslate2 (or the readers plugin's [ct2] extra)"


def _ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError(f"ct2: needs CTranslate2: {INSTALL}") from None
    return ctranslate2


def engine_version() -> str:
    try:
        return importlib.metadata.version("ctranslate2")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def converted(ref: ModelRef, compute_type: str) -> Path:
    """The CTranslate2 copy of ``ref`` with weights stored as ``compute_type``, built once."""
    ctranslate2 = _ctranslate2()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(ref.path).name or ref.spec)[:60]
    revision = re.sub(r"[^A-Za-z0-9]+", "", ref.revision.split(":")[-1])[:16]
    named = stem if revision in stem else f"{stem}-{revision}"
    target = default_home() / "models" / "ct2" / f"{named}-{compute_type}-ct2-{ctranslate2.__version__}"
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "model.bin").is_file():
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
        try:
            revision_arg = None if Path(ref.path).is_dir() else ref.revision
            converter = ctranslate2.converters.TransformersConverter(ref.path, revision=revision_arg)
            converter.convert(str(tmp / "model"), quantization=compute_type, force=True)
            (tmp / "model").rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def stopper(tokenizer: Any, stop: Sequence[str], generated: list[list[int]]) -> Any:
    """A step callback ending a batch row once its decoded new text holds a stop string. It
    holds no reference to the generator: CTranslate2 may release it on a worker thread, and
    a generator freed there would join that thread from itself."""
    def step(result: Any) -> bool:
        row = generated[result.batch_id]
        row.append(result.token_id)
        text = tokenizer.decode(row, skip_special_tokens=True)
        return any(s and s in text for s in stop)
    return step


class CT2Generator(OneModel, Component):
    name = "ct2"
    hub_model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    offline_model = "offline:smollm2-135m-instruct"
    version = "1"
    capabilities = frozenset({PREFIX, LOGLIKELIHOOD})

    def __init__(
        self,
        model: str = AUTO,
        compute_type: str = AUTO,
        device: str = AUTO,
        threads: int = 0,
        batch_size: int = 8,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
        stop: list[str] | None = None,
        chat_template: bool | str = AUTO,
        system_prompt: str | None = None,
        max_input_tokens: int = 2048,
    ) -> None:
        self.model = model
        self.compute_type = compute_type
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.stop = stop
        self.chat_template = chat_template
        self.system_prompt = system_prompt
        self.max_input_tokens = max_input_tokens

    @property
    def device_(self) -> str:
        """``auto``: CUDA when CTranslate2 sees a GPU, else the CPU."""
        if self.device != AUTO:
            return self.device
        return "cuda" if _ctranslate2().get_cuda_device_count() > 0 else "cpu"

    @property
    def compute_type_(self) -> str:
        """``auto``: int8 on the CPU, float16 on CUDA."""
        self.validate()
        if self.compute_type == AUTO:
            return "float16" if self.device_ == "cuda" else "int8"
        return self.compute_type

    def validate(self) -> None:
        """Settings checked before any model loads: the engine is installed, the compute type known."""
        _ctranslate2()
        if self.compute_type != AUTO and self.compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"ct2: compute_type must be one of auto, {', '.join(COMPUTE_TYPES)}, "
                              f"got '{self.compute_type}'")

    def fingerprint(self) -> dict[str, Any]:
        return {"model": self.model_ref_.identity(), "compute_type": self.compute_type_,
                "engine": f"ctranslate2=={engine_version()}"}

    def load(self) -> tuple[Any, Any]:
        """The (CTranslate2 generator, tokenizer) pair, converted and loaded once."""
        if getattr(self, "lm_", None) is None:
            from transformers import AutoTokenizer, GenerationConfig
            from transformers.utils import logging

            logging.disable_progress_bar()

            ctranslate2 = _ctranslate2()
            ref = self.model_ref_
            self.folder_ = converted(ref, self.compute_type_)
            local = Path(ref.path).is_dir()
            revision = {} if local else {"revision": ref.revision}
            if not local and not network_available():
                revision["local_files_only"] = True
            tokenizer = AutoTokenizer.from_pretrained(ref.path, **revision)
            try:
                eos = GenerationConfig.from_pretrained(ref.path, **revision).eos_token_id
            except OSError:
                eos = None
            eos = eos if eos is not None else tokenizer.eos_token_id
            ids = [eos] if isinstance(eos, int) else list(eos or [])
            self.end_tokens_ = tokenizer.convert_ids_to_tokens(ids) or None
            self.lm_ = ctranslate2.Generator(str(self.folder_), device=self.device_, compute_type=self.compute_type_,
                                             intra_threads=self.threads)
            self.tokenizer_ = tokenizer
            self.chat_format_ = ChatFormat(tokenizer, self.chat_template, self.system_prompt, self.max_input_tokens)
            self.usage_ = {"calls": 0, "tokens_in": 0, "tokens_out": 0}
        return self.lm_, self.tokenizer_

    def format(self, prompt: str) -> str:
        """The text the model sees for ``prompt`` (chat template applied when used)."""
        self.load()
        return self.chat_format_.format(prompt)

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int | None = None, prefix: str = "",
                 temperature: float | None = None, top_p: float | None = None) -> list[str]:
        """Greedy (or seeded sampled) continuations of ``prompts``; with ``prefix`` every answer
        starts with that text, and only what follows it is returned. ``temperature`` / ``top_p``
        override the generator's own for this call."""
        model, tokenizer = self.load()
        budget = max_new_tokens or self.max_new_tokens
        ids = [self.chat_format_.encode(self.format(p) + prefix) for p in prompts]
        outputs: list[str] = [""] * len(ids)
        usage: list[dict[str, int]] = [{} for _ in ids]
        temperature = self.temperature if temperature is None else temperature
        sampling = temperature > 0
        if sampling:
            _ctranslate2().set_random_seed(self.seed)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            tokens = [tokenizer.convert_ids_to_tokens(ids[i]) for i in rows]
            generated: list[list[int]] = [[] for _ in rows]
            results = model.generate_batch(
                tokens, max_length=budget, include_prompt_in_result=False, end_token=self.end_tokens_,
                sampling_topk=0 if sampling else 1, sampling_temperature=temperature if sampling else 1.0,
                **({"sampling_topp": top_p} if sampling and top_p is not None else {}),
                callback=stopper(tokenizer, self.stop, generated) if self.stop else None)
            for row, result in zip(rows, results):
                new = result.sequences_ids[0]
                outputs[row] = cut_at_stop(tokenizer.decode(new, skip_special_tokens=True), self.stop or [])
                usage[row] = {"tokens_in": len(ids[row]), "tokens_out": len(new)}
        self.last_usage_ = usage
        for entry in usage:
            self.usage_["tokens_in"] += entry["tokens_in"]
            self.usage_["tokens_out"] += entry["tokens_out"]
        self.usage_["calls"] += len(ids)
        return outputs

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """log p(continuation | context), summed over the continuation's tokens (CTranslate2
        scores every token after the first given the ones before it)."""
        model, tokenizer = self.load()
        pairs = [scoring_ids(tokenizer, c, t) for c, t in zip(contexts, continuations, strict=True)]
        batch = [tokenizer.convert_ids_to_tokens(prefix + target) for prefix, target in pairs]
        results = model.score_batch(batch, max_batch_size=self.batch_size, max_input_length=0)
        return [float(sum(r.log_probs[len(r.log_probs) - len(target):])) if target else 0.0
                for r, (_, target) in zip(results, pairs)]

