"""The ``syneg`` negative sampler (Li et al., 2024, SyNeg): LLM-written hard negatives mixed
with retrieved ones at the instance level.

For every training (query, positive) pair the generator writes one hard negative under a
multi-attribute prompt (the corpus domain, a difficulty level and a length relative to the
positive, drawn per pair with ``seed``), answering in JSON; a self-reflection prompt then
asks whether that passage answers the query, and a passage the generator judges to answer
it is replaced by the revision it offers or dropped. Malformed JSON is retried (``retries``
times, with a stricter instruction), then the pair is skipped and counted. Outputs are cached
one file per pair, so an interrupted generation resumes.

Mixing: every instance gets its one synthetic negative (when it has one) plus retrieved
negatives from ``retrieved`` (``bm25-hard`` by default, or ``ann``): one more retrieved
negative with probability ``1 / ratio - 1``, so that synthetic negatives make up ``ratio``
of the negatives on average (0.7 by default), never more than ``k`` in all.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, Passage
from retbench.cache import atomic_write_json
from retbench_synth.json_output import parse_json_object
from retbench_synth.members import build_component

DIFFICULTIES = ("moderately hard", "very hard")
LENGTHS = ("about as long as", "shorter than", "longer than")
NEGATIVE_PROMPT = (
    "You write hard negative passages for training a {domain} search engine.\n"
    "Query: {query}\nRelevant passage: {positive}\n\n"
    "Write a {difficulty} negative: a passage on the same topic, with many of the query's words, that does NOT "
    "answer the query. Make it {length} the relevant passage. Reply with JSON only: {\"negative\": \"...\"}"
)
REFLECT_PROMPT = (
    "Query: {query}\nPassage: {negative}\n\nDoes the passage answer the query? If it does, rewrite it so that "
    "it no longer does. Reply with JSON only: {\"answers_query\": true or false, \"revised\": \"...\"}"
)
STRICT = "\nReply with one valid JSON object and nothing else."
PROMPT_VERSION = "1"


class SynegNegatives(Component):
    name = "syneg"
    version = "1"

    def __init__(self, ratio: float = 0.7, retrieved: str = "bm25-hard", retrieved_args: dict[str, Any] | None = None,
                 generator: str = "hf", generator_args: dict[str, Any] | None = None, domain: str = "general",
                 retries: int = 1, reflect: bool = True, max_new_tokens: int = 160, seed: int = 0) -> None:
        self.ratio = ratio
        self.retrieved = retrieved
        self.retrieved_args = retrieved_args
        self.generator = generator
        self.generator_args = generator_args
        self.domain = domain
        self.retries = retries
        self.reflect = reflect
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    @property
    def log(self) -> list[dict[str, Any]]:
        return list(getattr(self, "log_", [])) + list(getattr(getattr(self, "base_", None), "log", []))

    def set_generator(self, generator: Any) -> None:
        """Use this generator instead of building ``generator`` from the installed plugins."""
        self.generator_ = generator

    def attributes(self, qid: str) -> dict[str, str]:
        rng = random.Random(f"{self.seed}:{qid}")
        return {"domain": self.domain, "difficulty": rng.choice(DIFFICULTIES), "length": rng.choice(LENGTHS)}

    def prepare(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any,
                hard_negatives: Mapping[str, list[str]], workdir: Path) -> None:
        if not 0 < self.ratio <= 1:
            raise ConfigError(f"syneg: ratio must be in (0, 1], got {self.ratio}")
        self.base_ = build_component("negative_samplers", self.retrieved, self.retrieved_args)
        if hasattr(self.base_, "prepare"):
            self.base_.prepare(items, corpus=corpus, retriever=retriever, hard_negatives=hard_negatives,
                               workdir=workdir / "retrieved")
        generator = getattr(self, "generator_", None) or build_component("generators", self.generator,
                                                                         self.generator_args)
        self.synthetic_ = self.write_negatives(items, corpus=corpus, generator=generator, workdir=workdir / "syneg")

    def write_negatives(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, generator: Any,
                        workdir: Path) -> dict[str, Passage]:
        """{qid: synthetic negative}, one cached file per (query, positive) pair."""
        workdir.mkdir(parents=True, exist_ok=True)
        positives = {p.id: p for p in corpus.get(sorted({i["positives"][0] for i in items}))}
        counts = {"kept": 0, "malformed": 0, "revised": 0, "rejected_by_reflection": 0}
        negatives = {}
        for item in items:
            positive = positives[item["positives"][0]]
            key = hashlib.sha256(json.dumps([item["query"], positive.id, PROMPT_VERSION]).encode()).hexdigest()[:32]
            path = workdir / f"{key}.json"
            if not path.is_file():
                atomic_write_json(path, self._write_one(item, positive, generator))
            result = json.loads(path.read_text())
            counts[result["status"]] += 1
            if result["status"] in ("kept", "revised"):
                negatives[item["qid"]] = Passage(id=f"syneg:{key}", text=result["negative"])
        self.log_ = [{"synthetic_negatives": counts, "prompt_version": PROMPT_VERSION,
                     "generator": getattr(generator, "name", "?")}]
        return negatives

    def _ask(self, generator: Any, prompt: str, field: str) -> dict[str, Any] | None:
        for attempt in range(self.retries + 1):
            value = parse_json_object(generator.generate([prompt + (STRICT if attempt else "")],
                                                         max_new_tokens=self.max_new_tokens)[0])
            if value is not None and field in value:
                return value
        return None

    def _write_one(self, item: Mapping[str, Any], positive: Passage, generator: Any) -> dict[str, Any]:
        attributes = self.attributes(item["qid"])
        prompt = NEGATIVE_PROMPT
        for name, value in {"query": item["query"], "positive": positive.contents(": "), **attributes}.items():
            prompt = prompt.replace("{" + name + "}", value)
        written = self._ask(generator, prompt, "negative")
        if written is None or not str(written["negative"]).strip():
            return {"status": "malformed", **attributes}
        negative = str(written["negative"]).strip()
        if not self.reflect:
            return {"status": "kept", "negative": negative, **attributes}
        verdict = self._ask(generator, REFLECT_PROMPT.replace("{query}", item["query"])
                            .replace("{negative}", negative), "answers_query")
        if verdict is None or verdict["answers_query"] is not True:
            return {"status": "kept", "negative": negative, **attributes}
        revised = str(verdict.get("revised") or "").strip()
        if revised and revised != negative:
            return {"status": "revised", "negative": revised, "original": negative, **attributes}
        return {"status": "rejected_by_reflection", "negative": negative, **attributes}

    def on_step(self, step: int, *, items: Sequence[Mapping[str, Any]], corpus: Corpus, retriever: Any) -> None:
        if hasattr(self.base_, "on_step"):
            self.base_.on_step(step, items=items, corpus=corpus, retriever=retriever)

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str | Passage]]:
        rng = random.Random(seed)
        retrieved = self.base_.sample(batch, corpus=corpus, retriever=retriever, k=k, seed=seed)
        extra = 1 / self.ratio - 1
        chosen: list[list[str | Passage]] = []
        for item, others in zip(batch, retrieved, strict=True):
            synthetic = self.synthetic_.get(item["qid"])
            if synthetic is None:
                chosen.append(list(others[:k]))
                continue
            wanted = int(extra) + (rng.random() < extra - int(extra))
            chosen.append([synthetic, *others[: max(0, min(wanted, k - 1))]])
        return chosen
