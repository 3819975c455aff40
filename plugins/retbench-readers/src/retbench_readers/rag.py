"""The ``rag`` reader: retrieved passages in a prompt, a generator writes the answer.

It reads whatever its injector prepared: passages (``in-context``) go into the prompt; a
parametric injection (an Injection with a ``payload``, e.g. PRAG / DyPRAG LoRAs) is applied
through the generator's ``injected(payload)`` context manager around that question's call.
Each answer's ``extra["online_seconds"]`` gives the seconds spent on it (merge, generate).
``mode=no-retrieval`` is the closed-book baseline (no passages used). ``max_new_tokens``
defaults to the generator's own setting.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from retbench import Answer, Component, ConfigError, Injection
from retbench.types import Queries
from retbench_readers.prompts import build_prompt, extract_answer

MODES = ("rag", "no-retrieval")


class RagReader(Component):
    name = "rag"
    version = "2"
    injector = "in-context"
    default_generator = "hf"

    def __init__(self, k: int = 3, mode: str = "rag", template: str = "short", max_new_tokens: int | None = None,
                 batch_size: int = 8) -> None:
        self.k = k
        self.mode = mode
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def set_generator(self, generator: Any) -> None:
        self.generator_ = generator

    def prompt(self, question: str, injection: Injection | None) -> str:
        if self.mode not in MODES:
            raise ConfigError(f"rag: mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        passages = injection.passages[: self.k] if injection is not None and self.mode == "rag" else []
        if not passages:  # closed book, or knowledge given as parameters only (PRAG, DyPRAG)
            return build_prompt("closed-book" if self.template in ("short", "cot") else self.template, question, [])
        return build_prompt(self.template, question, passages)

    def answer(self, queries: Queries, injections: Mapping[str, Injection]) -> list[Answer]:
        if getattr(self, "generator_", None) is None:
            raise ConfigError("rag: no generator (give --generator, e.g. hf)")
        qids = list(queries)
        prompts = {q: self.prompt(queries[q], injections.get(q)) for q in qids}
        results: dict[str, tuple[str, dict[str, int]]] = {}
        plain = [q for q in qids if getattr(injections.get(q), "payload", None) is None]
        online: dict[str, dict[str, float]] = {}
        for start in range(0, len(plain), self.batch_size):
            batch = plain[start : start + self.batch_size]
            began = time.perf_counter()
            results.update(zip(batch, self._generate([prompts[q] for q in batch])))
            online.update({q: {"generate": (time.perf_counter() - began) / len(batch)} for q in batch})
        for qid in (q for q in qids if q not in set(plain)):
            if not hasattr(self.generator_, "injected"):
                raise ConfigError(f"rag: injector '{injections[qid].kind}' gives parameters, but generator "
                                  f"'{self.generator_.name}' cannot take them")
            results[qid], online[qid] = self._generate_injected(prompts[qid], injections[qid].payload)
        return [Answer(qid=q, text=extract_answer(results[q][0]),
                       extra={"output": results[q][0], **results[q][1], "online_seconds": online[q]})
                for q in qids]

    def _generate_injected(self, prompt: str, payload: Any) -> tuple[tuple[str, dict[str, int]], dict[str, float]]:
        """Generate with ``payload`` applied; seconds spent merging (and restoring) and generating."""
        with contextlib.ExitStack() as stack:
            began = time.perf_counter()
            stack.enter_context(self.generator_.injected(payload))
            merged = time.perf_counter()
            result = self._generate([prompt])[0]
            generated = time.perf_counter()
        restored = time.perf_counter()
        return result, {"merge": merged - began + restored - generated, "generate": generated - merged}

    def _generate(self, prompts: list[str]) -> list[tuple[str, dict[str, int]]]:
        outputs = self.generator_.generate(prompts, max_new_tokens=self.max_new_tokens)
        usage = getattr(self.generator_, "last_usage_", None) or [{} for _ in prompts]
        return list(zip(outputs, usage))
