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

Three engine settings make CPU generation faster without changing what is asked:
``parallel_batches`` (CTranslate2's ``inter_threads``) decodes that many batches at once, each
on ``threads / parallel_batches`` threads; by default one batch per CPU thread, because on this
project's 2-core machine one thread per batch is faster than two threads on one batch (int8,
closed book: 13.1 questions/s for two one-thread batches at once, 5.0 for two threads on each
batch in turn);
``cpu_isa="auto"`` runs CTranslate2's kernels with the widest instruction set the CPU reports
(CTranslate2 itself picks AVX2 on AMD processors that have AVX512; on this project's AMD EPYC
AVX512 is 1.13x faster in int8); it is process-wide (``CT2_FORCE_CPU_ISA``, read once by the
engine, and an explicit value of that variable wins) and enters the identity, because int8
outputs differ between instruction sets. ``shared_prefix`` runs the token prefix that all
prompts of a call share (the chat template's system turn and the instruction) once per batch as
CTranslate2's static prompt instead of once per prompt.
"""

from __future__ import annotations

import importlib.metadata
import os
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
CPU_ISAS = ("AVX512", "AVX2", "AVX")
ISA_FLAGS = {"AVX512": {"avx512f", "avx512bw", "avx512dq", "avx512vl"}, "AVX2": {"avx2", "fma"}, "AVX": {"avx"}}
ISA_VARIABLE = "CT2_FORCE_CPU_ISA"


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


def widest_cpu_isa(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The widest of CTranslate2's x86 instruction sets whose flags the CPU reports, or None
    where the flags cannot be read (not Linux, not x86): the engine then chooses."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    flags = set(line.partition(":")[2].split())
    return next((isa for isa in CPU_ISAS if ISA_FLAGS[isa] <= flags), None)


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least one of its own."""
    if len(rows) < 2:
        return 0
    shortest = min(len(r) for r in rows) - 1
    first = rows[0]
    length = 0
    while length < shortest and all(r[length] == first[length] for r in rows):
        length += 1
    return length


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
        cpu_isa: str = AUTO,
        shared_prefix: bool = True,
        parallel_batches: int | str = AUTO,
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
        self.cpu_isa = cpu_isa
        self.shared_prefix = shared_prefix
        self.parallel_batches = parallel_batches

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

    @property
    def threads_(self) -> int:
        """CPU threads in all: ``threads``, or (0) ``OMP_NUM_THREADS`` when set (a Ray worker's
        share, ``--worker-resources cpu=N``), else the CPUs this process may run on."""
        if self.threads > 0:
            return self.threads
        if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
            return int(os.environ["OMP_NUM_THREADS"])
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1

    @property
    def parallel_batches_(self) -> int:
        """Batches decoded at once: ``parallel_batches``, or (auto) one per CPU thread, one on CUDA."""
        if self.parallel_batches != AUTO:
            return int(self.parallel_batches)
        return 1 if self.device_ == "cuda" else self.threads_

    @property
    def cpu_isa_(self) -> str | None:
        """The instruction set CTranslate2's CPU kernels run with: ``CT2_FORCE_CPU_ISA`` when
        set, else ``cpu_isa`` (``auto``: the widest the CPU reports; ``engine``: CTranslate2's
        own choice, None); None on CUDA."""
        if self.device_ != "cpu":
            return None
        if os.environ.get(ISA_VARIABLE):
            return os.environ[ISA_VARIABLE]
        if self.cpu_isa == "engine":
            return None
        return widest_cpu_isa() if self.cpu_isa == AUTO else self.cpu_isa

    def validate(self) -> None:
        """Settings checked before any model loads: the engine is installed, the compute type known."""
        _ctranslate2()
        if self.compute_type != AUTO and self.compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"ct2: compute_type must be one of auto, {', '.join(COMPUTE_TYPES)}, "
                              f"got '{self.compute_type}'")
        if self.parallel_batches != AUTO and (not isinstance(self.parallel_batches, int) or self.parallel_batches < 1):
            raise ConfigError(f"ct2: parallel_batches must be auto or an integer >= 1, got {self.parallel_batches!r}")
        if self.cpu_isa not in (AUTO, "engine", *CPU_ISAS):
            raise ConfigError(f"ct2: cpu_isa must be one of auto, engine, {', '.join(CPU_ISAS)}, "
                              f"got '{self.cpu_isa}'")

    def fingerprint(self) -> dict[str, Any]:
        return {"model": self.model_ref_.identity(), "compute_type": self.compute_type_,
                "engine": f"ctranslate2=={engine_version()}", "cpu_isa": self.cpu_isa_ or "engine",
                "shared_prefix": self.shared_prefix}

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
            isa = self.cpu_isa_
            if isa is not None:
                os.environ[ISA_VARIABLE] = isa
            parallel = self.parallel_batches_
            self.lm_ = self._engine(parallel, max(1, self.threads_ // parallel))
            self.tokenizer_ = tokenizer
            self.chat_format_ = ChatFormat(tokenizer, self.chat_template, self.system_prompt, self.max_input_tokens)
            self.usage_ = {"calls": 0, "tokens_in": 0, "tokens_out": 0}
        return self.lm_, self.tokenizer_

    def _engine(self, inter_threads: int, intra_threads: int) -> Any:
        return _ctranslate2().Generator(str(self.folder_), device=self.device_, compute_type=self.compute_type_,
                                        inter_threads=inter_threads, intra_threads=intra_threads)

    def sampling_engine(self) -> Any:
        """The engine for sampled calls: one batch at a time. Each of CTranslate2's parallel
        workers draws from its own random generator, and which worker takes a batch is not
        fixed, so sampling on several would not repeat under the same seed."""
        model, _ = self.load()
        if self.parallel_batches_ == 1:
            return model
        if getattr(self, "sampler_", None) is None:
            self.sampler_ = self._engine(1, self.threads_)
        return self.sampler_

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
            model = self.sampling_engine()
            _ctranslate2().set_random_seed(self.seed)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        submitted = []
        for start in range(0, len(order), self.batch_size):  # submitted at once: parallel_batches run together
            rows = order[start : start + self.batch_size]
            shared = shared_prefix_length([ids[i] for i in rows]) if self.shared_prefix else 0
            tokens = [tokenizer.convert_ids_to_tokens(ids[i][shared:]) for i in rows]
            static = ({"static_prompt": tokenizer.convert_ids_to_tokens(ids[rows[0]][:shared]),
                       "cache_static_prompt": False} if shared else {})
            submitted.append((rows, model.generate_batch(
                tokens, max_length=budget, **static, include_prompt_in_result=False, end_token=self.end_tokens_,
                sampling_topk=0 if sampling else 1, sampling_temperature=temperature if sampling else 1.0,
                **({"sampling_topp": top_p} if sampling and top_p is not None else {}), asynchronous=True,
                callback=stopper(tokenizer, self.stop, [[] for _ in rows]) if self.stop else None)))
        for rows, results in submitted:
            for row, result in zip(rows, results):
                new = result.result().sequences_ids[0]
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

