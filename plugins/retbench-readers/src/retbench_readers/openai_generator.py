"""The ``openai-compatible`` generator: any server speaking the OpenAI API (vLLM, llama.cpp
server, TGI, OpenAI itself), through the official ``openai`` client.

Base URL and key come from the parameters or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``. The
client retries connection errors, 429 and 5xx answers with exponential back-off
(``max_retries``). Deterministic requests (temperature 0) are cached on disk, keyed on the
full request, so a re-run or a resumed run sends nothing twice; sampled ones never are.
``loglikelihood`` uses the completions endpoint with ``echo`` and ``logprobs`` (vLLM and
llama.cpp support it; OpenAI's chat models do not).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from retbench import Component, ConfigError, atomic_write_json, canonical_json, default_home, stage_key
from retbench_readers.hf_generator import cut_at_stop

APIS = ("chat", "completions")


class OpenAICompatibleGenerator(Component):
    name = "openai-compatible"
    version = "1"

    def __init__(
        self,
        model: str = "default",
        base_url: str | None = None,
        api_key: str | None = None,
        api: str = "chat",
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
        stop: list[str] | None = None,
        system_prompt: str | None = None,
        max_retries: int = 5,
        timeout: float = 120.0,
        cache: bool = True,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.api = api
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.stop = stop
        self.system_prompt = system_prompt
        self.max_retries = max_retries
        self.timeout = timeout
        self.cache = cache

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["api_key"] = None  # never in cache keys or records
        return params

    def fingerprint(self) -> dict[str, Any]:
        return {"base_url": self._base_url()}

    def _base_url(self) -> str:
        url = self.base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise ConfigError("openai-compatible: give --generator-arg base_url=http://host:port/v1 "
                              "or set OPENAI_BASE_URL")
        return url

    def client(self) -> Any:
        if getattr(self, "client_", None) is None:
            if self.api not in APIS:
                raise ConfigError(f"openai-compatible: api must be one of {', '.join(APIS)}, got '{self.api}'")
            from openai import OpenAI

            self.client_ = OpenAI(base_url=self._base_url(),
                                  api_key=self.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
                                  max_retries=self.max_retries, timeout=self.timeout)
            self.usage_ = {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cached": 0}
        return self.client_

    def _request(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """The server's response as a dict, from the cache when allowed."""
        client = self.client()
        cacheable = self.cache and not body.get("temperature")
        path = default_home() / "requests" / stage_key(url=self._base_url(), endpoint=endpoint, body=body)
        path = path.with_suffix(".json")
        if cacheable and path.is_file():
            self.usage_["cached"] += 1
            return json.loads(path.read_text("utf-8"))
        if endpoint == "chat":
            response = client.chat.completions.create(**body).model_dump()
        else:
            response = client.completions.create(**body).model_dump()
        self.usage_["calls"] += 1
        if cacheable:
            atomic_write_json(path, json.loads(canonical_json(response)))
        return response

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int | None = None, prefix: str = "",
                 temperature: float | None = None, top_p: float | None = None) -> list[str]:
        """Continuations of ``prompts``; with ``prefix`` every answer starts with that text (an
        assistant message to continue, for the chat API, as vLLM and llama.cpp servers do), and
        only what follows it is returned. ``temperature`` / ``top_p`` override the generator's own
        for this call."""
        temperature = self.temperature if temperature is None else temperature
        outputs = []
        self.last_usage_ = []
        for prompt in prompts:
            body: dict[str, Any] = {"model": self.model, "max_tokens": max_new_tokens or self.max_new_tokens,
                                    "temperature": temperature}
            if temperature:
                body["seed"] = self.seed
                if top_p is not None:
                    body["top_p"] = top_p
            if self.stop:
                body["stop"] = list(self.stop)
            if self.api == "chat":
                messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
                body["messages"] = [*messages, {"role": "user", "content": prompt},
                                    *([{"role": "assistant", "content": prefix}] if prefix else [])]
                response = self._request("chat", body)
                text = response["choices"][0]["message"]["content"] or ""
            else:
                body["prompt"] = prompt + prefix
                response = self._request("completions", body)
                text = response["choices"][0]["text"]
            outputs.append(cut_at_stop(text, self.stop or []))
            usage = response.get("usage") or {}
            tokens = {"tokens_in": usage.get("prompt_tokens") or 0, "tokens_out": usage.get("completion_tokens") or 0}
            self.last_usage_.append(tokens)
            self.usage_["tokens_in"] += tokens["tokens_in"]
            self.usage_["tokens_out"] += tokens["tokens_out"]
        return outputs

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        scores = []
        for context, continuation in zip(contexts, continuations, strict=True):
            body = {"model": self.model, "prompt": context + continuation, "max_tokens": 0, "echo": True,
                    "logprobs": 1, "temperature": 0.0}
            logprobs = self._request("completions", body)["choices"][0]["logprobs"]
            offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
            scores.append(float(sum(v for o, v in zip(offsets, values) if o >= len(context) and v is not None)))
        return scores
