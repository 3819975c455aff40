"""The ``hf`` generator: a local causal LM through transformers.

Prompts are formatted and tokenized by a :class:`ChatFormat` (shared with ``ct2``),
sorted by length and generated in left-padded batches, greedy unless ``temperature`` > 0
(then seeded sampling). Outputs are cut at the first stop string. ``loglikelihood`` sums the
log-probabilities of a continuation's tokens given its context. Token counts of every call
accumulate in ``usage_`` for the cost report. ``injected(payload)`` merges a list of
LoraWeights (PRAG / DyPRAG) into the model for the calls inside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from retbench import LOGLIKELIHOOD, LORA, PREFIX, Component, ConfigError, LoraWeights
from retbench_readers.chat_format import AUTO, ChatFormat, scoring_ids
from retbench_readers.lora_merge import merged_lora
from retbench_readers.one_model import OneModel


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    positions = [text.find(s) for s in stop if s and s in text]
    return text[: min(positions)] if positions else text


class HFGenerator(OneModel, Component):
    name = "hf"
    hub_model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    offline_model = "offline:smollm2-135m-instruct"
    version = "1"
    capabilities = frozenset({LORA, PREFIX, LOGLIKELIHOOD})

    def __init__(
        self,
        model: str = AUTO,
        dtype: str = "float32",
        device: str = AUTO,
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
        self.dtype = dtype
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.stop = stop
        self.chat_template = chat_template
        self.system_prompt = system_prompt
        self.max_input_tokens = max_input_tokens

    def load(self) -> tuple[Any, Any]:
        """The (model, tokenizer) pair, loaded once."""
        if getattr(self, "lm_", None) is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging

            logging.disable_progress_bar()
            dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
            if self.dtype not in dtypes:
                raise ConfigError(f"hf: dtype must be one of {', '.join(dtypes)}, got '{self.dtype}'")
            ref = self.model_ref_
            revision = {} if ref.path.startswith("/") else {"revision": ref.revision}
            tokenizer = AutoTokenizer.from_pretrained(ref.path, **revision)
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtypes[self.dtype], **revision)
            self.lm_ = model.to(self.device_).eval()
            self.tokenizer_ = tokenizer
            self.chat_format_ = ChatFormat(tokenizer, self.chat_template, self.system_prompt, self.max_input_tokens)
            self.usage_ = {"calls": 0, "tokens_in": 0, "tokens_out": 0}
        return self.lm_, self.tokenizer_

    @contextmanager
    def injected(self, payload: Sequence[LoraWeights]) -> Iterator[None]:
        """Generate with the summed LoRAs of ``payload`` merged in; the base weights come back
        exactly afterwards."""
        model, _ = self.load()
        with merged_lora(model, payload):
            yield

    def format(self, prompt: str) -> str:
        """The text the model sees for ``prompt`` (chat template applied when used)."""
        self.load()
        return self.chat_format_.format(prompt)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Token ids of ``text`` as the model reads it (``text`` already formatted: no special
        tokens added when the chat template supplies them), truncated to ``max_length``."""
        _, tokenizer = self.load()
        ids = tokenizer(text, add_special_tokens=self.chat_format_.add_special_tokens)["input_ids"]
        return ids[:max_length] if max_length else ids

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int | None = None, prefix: str = "",
                 temperature: float | None = None, top_p: float | None = None) -> list[str]:
        """Greedy (or seeded sampled) continuations of ``prompts``; with ``prefix`` every answer
        starts with that text, and only what follows it is returned. ``temperature`` / ``top_p``
        override the generator's own for this call (a component that samples one step and
        decodes another greedily)."""
        import torch

        model, tokenizer = self.load()
        budget = max_new_tokens or self.max_new_tokens
        texts = [self.format(p) + prefix for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        outputs: list[str] = [""] * len(texts)
        usage: list[dict[str, int]] = [{} for _ in texts]
        temperature = self.temperature if temperature is None else temperature
        sampling = temperature > 0
        if sampling:
            torch.manual_seed(self.seed)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, truncation=True,
                              max_length=self.max_input_tokens, add_special_tokens=self.chat_format_.add_special_tokens)
            batch = {k: v.to(self.device_) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                generated = model.generate(
                    **batch, max_new_tokens=budget, do_sample=sampling, pad_token_id=tokenizer.pad_token_id,
                    **({"temperature": temperature, **({"top_p": top_p} if top_p is not None else {})}
                       if sampling else {"temperature": None, "top_p": None, "top_k": None}),
                    **({"stop_strings": list(self.stop), "tokenizer": tokenizer} if self.stop else {}))
            new = generated[:, batch["input_ids"].shape[1]:]
            for row, tokens, mask in zip(rows, new, batch["attention_mask"]):
                kept = tokens[tokens != tokenizer.pad_token_id]
                outputs[row] = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), self.stop or [])
                usage[row] = {"tokens_in": int(mask.sum()), "tokens_out": int(kept.numel())}
        self.last_usage_ = usage
        for entry in usage:
            self.usage_["tokens_in"] += entry["tokens_in"]
            self.usage_["tokens_out"] += entry["tokens_out"]
        self.usage_["calls"] += len(texts)
        return outputs

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """log p(continuation | context), summed over the continuation's tokens."""
        import torch

        model, tokenizer = self.load()
        scores = []
        for context, continuation in zip(contexts, continuations, strict=True):
            prefix, target = scoring_ids(tokenizer, context, continuation)
            ids = torch.tensor([prefix + target], device=self.device_)
            with torch.inference_mode():
                logits = model(ids).logits[0, len(prefix) - 1 : -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            scores.append(float(logprobs[torch.arange(len(target)), torch.tensor(target)].sum()))
        return scores
