"""The ``rag`` reader: retrieved passages in a prompt, a generator writes the answer.

It reads whatever its injector prepared: passages (``in-context``) go into the prompt; a
parametric injection (an Injection with a ``payload``, e.g. PRAG / DyPRAG LoRAs) is applied
through the generator's ``injected(payload)`` context manager around that question's call.
Each answer's ``extra["online_seconds"]`` gives the seconds spent on it (merge, generate).
``mode=no-retrieval`` is the closed-book baseline (no passages used). Closed book, RAG and
the parametric readers share one template that differs only by the passages (the default
``direct`` is PRAG / DyPRAG's direct prompt, see ``prompts``); the answer turn is prefilled
with the template's answer prefix ("The answer is") and the answer extracted as the
reference evaluates it. ``training_text`` is the same prompt with its answer, for methods
that train the generator to answer (PRAG, DyPRAG). ``max_new_tokens`` defaults to the
generator's own setting. ``batch_size``: questions per generator call; by default (None)
every question of the shard in one call, so the generator groups prompts of similar length
into its own batches (CTranslate2 feeds the part of a prompt longer than its batch's shortest
one token by token, so mixed lengths cost it up to 3x) and decodes several at once.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from retbench import Answer, Component, ConfigError, Injection, Passage, Queries
from retbench_readers.prompts import (
    answer_prefix,
    answer_sentence,
    build_prompt,
    extract_answer,
    extraction_style,
    template_text,
)

MODES = ("rag", "no-retrieval")


class RagReader(Component):
    name = "rag"
    version = "3"
    injector = "in-context"
    default_generator = "hf"

    def __init__(self, k: int = 3, mode: str = "rag", template: str = "direct", answer_prefix: str = "auto",
                 extraction: str = "auto", max_new_tokens: int | None = None, batch_size: int | None = None) -> None:
        self.k = k
        self.mode = mode
        self.template = template
        self.answer_prefix = answer_prefix
        self.extraction = extraction
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def validate(self) -> None:
        """Check the settings before any model loads."""
        if self.mode not in MODES:
            raise ConfigError(f"rag: mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        template_text(self.template)
        extraction_style(self.template, self.extraction)

    def set_generator(self, generator: Any) -> None:
        self.generator_ = generator

    @property
    def prefix_(self) -> str:
        return answer_prefix(self.template, self.answer_prefix)

    def prompt_text(self, question: str, passages: list[Passage]) -> str:
        """The user turn: the template with ``passages`` (none for closed book)."""
        return build_prompt(self.template, question, passages)

    def prompt(self, question: str, injection: Injection | None) -> str:
        passages = injection.passages[: self.k] if injection is not None and self.mode == "rag" else []
        return self.prompt_text(question, passages)

    def training_text(self, question: str, passages: list[Passage], answer: str) -> str:
        """What the generator sees when it answers ``question`` from ``passages``, followed by
        ``answer`` as the answer turn ("The answer is {answer}." for ``direct``)."""
        formatted = self.generator_.format(self.prompt_text(question, passages))
        return formatted + answer_sentence(answer, self.prefix_)

    def answer_log_likelihood(self, question: str, passages: Sequence[Passage], answers: Sequence[str]) -> float:
        """log p(y | passages, x) for the retrieval-utility metric: the generator's log-likelihood
        of the answer turn (prefix + answer + ".") after the prompt with ``passages`` (closed book
        when empty), the probabilities of the distinct gold answers summed."""
        if not hasattr(getattr(self, "generator_", None), "loglikelihood"):
            raise ConfigError(f"rag: generator '{getattr(getattr(self, 'generator_', None), 'name', None)}' "
                              "cannot score an answer (no loglikelihood)")
        context = self.generator_.format(self.prompt_text(question, list(passages)))
        prefix = self.prefix_
        golds = list(dict.fromkeys(a.strip() for a in answers if a.strip()))
        continuations = [answer_sentence(a, prefix)[len(prefix):] for a in golds]
        scores = self.generator_.loglikelihood([context + prefix] * len(golds), continuations)
        return math.log(sum(math.exp(v - max(scores)) for v in scores)) + max(scores)

    def answer(self, queries: Queries, injections: Mapping[str, Injection]) -> list[Answer]:
        if getattr(self, "generator_", None) is None:
            raise ConfigError("rag: no generator (give --generator, e.g. hf)")
        self.validate()
        qids = list(queries)
        prompts = {q: self.prompt(queries[q], injections.get(q)) for q in qids}
        results: dict[str, tuple[str, dict[str, int]]] = {}
        plain = [q for q in qids if getattr(injections.get(q), "payload", None) is None]
        online: dict[str, dict[str, float]] = {}
        size = self.batch_size or max(1, len(plain))
        for start in range(0, len(plain), size):
            batch = plain[start : start + size]
            began = time.perf_counter()
            results.update(zip(batch, self._generate([prompts[q] for q in batch])))
            online.update({q: {"generate": (time.perf_counter() - began) / len(batch)} for q in batch})
        for qid in (q for q in qids if q not in set(plain)):
            if not hasattr(self.generator_, "injected"):
                raise ConfigError(f"rag: injector '{injections[qid].kind}' gives parameters, but generator "
                                  f"'{self.generator_.name}' cannot take them")
            results[qid], online[qid] = self._generate_injected(prompts[qid], injections[qid].payload)
        style = extraction_style(self.template, self.extraction)
        return [Answer(qid=q, text=extract_answer(results[q][0], style),
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
        prefix = {"prefix": self.prefix_} if self.prefix_ else {}
        outputs = self.generator_.generate(prompts, max_new_tokens=self.max_new_tokens, **prefix)
        usage = getattr(self.generator_, "last_usage_", None) or [{} for _ in prompts]
        return list(zip(outputs, usage))
