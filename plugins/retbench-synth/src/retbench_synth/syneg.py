"""The ``syneg`` negative sampler (Li et al., 2024, SyNeg): LLM-written hard negatives mixed
with retrieved ones at the instance level.

For every training (query, positive) pair the generator writes one hard negative under a
multi-attribute prompt (the corpus domain, a difficulty level and a length relative to the
positive, drawn per pair with ``seed``), answering in JSON (the answer prefilled with the
object's opening when ``prefill``, through the generator's ``prefix=``); a self-reflection prompt then
asks whether that passage answers the query, and a passage the generator judges to answer
it is replaced by the revision it offers or dropped. Malformed JSON is retried (``retries``
times, with a stricter instruction), then the pair is skipped and counted. Outputs are cached
one file per pair with the seconds it took, so an interrupted generation resumes and a reused
negative still reports its cost (``generation_seconds`` in the log).

Mixing: every instance gets its one synthetic negative (when it has one) plus retrieved
negatives from ``retrieved`` (``bm25-hard`` by default, or ``ann``): one more retrieved
negative with probability ``1 / ratio - 1``, so that synthetic negatives make up ``ratio``
of the negatives on average (0.7 by default), never more than ``k`` in all.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, Passage
from retbench.cache import atomic_write_json
from retbench.component import component_identity
from retbench_synth.json_output import parse_json_object
from retbench_synth.members import build_component

DIFFICULTIES = ("moderately hard", "very hard")
LENGTHS = ("about as long as", "shorter than", "longer than")
NEGATIVE_PROMPT = (
    "You write hard negative passages for training a {domain} search engine.\n"
    "Query: {query}\nRelevant passage: {positive}\n\n"
    "Write a {difficulty} negative: a passage on the same topic, with many of the query's words, that does NOT "
    "answer the query. Make it {length} the relevant passage. Reply with a JSON object whose \"negative\" field "
    "holds your passage."
)
REFLECT_PROMPT = (
    "Query: {query}\nPassage: {negative}\n\nDoes the passage answer the query? Reply with a JSON object: "
    "\"answers_query\" (true or false) and \"revised\" (the passage rewritten so that it no longer answers the "
    "query, or an empty string when it does not answer it)."
)
NEGATIVE_PREFIX = '{"negative": "'
REFLECT_PREFIX = '{"answers_query": '
STRICT = "\nReply with one valid JSON object and nothing else."
PROMPT_VERSION = "2"


class SynegNegatives(Component):
    name = "syneg"
    version = "1"

    def __init__(self, ratio: float = 0.7, retrieved: str = "bm25-hard", retrieved_args: dict[str, Any] | None = None,
                 domain: str = "general",
                 retries: int = 1, reflect: bool = True, prefill: bool = True, max_new_tokens: int = 160,
                 seed: int = 0) -> None:
        self.ratio = ratio
        self.retrieved = retrieved
        self.retrieved_args = retrieved_args
        self.domain = domain
        self.retries = retries
        self.reflect = reflect
        self.prefill = prefill
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    @property
    def log(self) -> list[dict[str, Any]]:
        return list(getattr(self, "log_", [])) + list(getattr(getattr(self, "base_", None), "log", []))

    def set_augment_generator(self, generator: Any) -> None:
        """The generator writing the negatives: the run's (``--augment-generator``, else
        ``--generator``), so it is loaded once and its identity enters the fit stage's key."""
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
        generator = getattr(self, "generator_", None)
        if generator is None:
            raise ConfigError("syneg: no generator to write negatives (a run gives its own; in code call "
                              "set_augment_generator)")
        self.synthetic_ = self.write_negatives(items, corpus=corpus, generator=generator, workdir=workdir / "syneg")

    def write_negatives(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, generator: Any,
                        workdir: Path, chunk: int = 16) -> dict[str, Passage]:
        """{qid: synthetic negative}, one cached file per (query, positive) pair; missing pairs
        are written ``chunk`` at a time (one batch of prompts per step)."""
        workdir.mkdir(parents=True, exist_ok=True)
        positives = {p.id: p for p in corpus.get(sorted({i["positives"][0] for i in items}))}
        setting = [component_identity(generator), PROMPT_VERSION, self.domain, self.retries, self.reflect,
                   self.prefill, self.max_new_tokens, self.seed]
        keys = {i["qid"]: hashlib.sha256(json.dumps([i["qid"], i["query"], i["positives"][0], setting],
                                                    default=str).encode()).hexdigest()[:32] for i in items}
        missing = [i for i in items if not (workdir / f"{keys[i['qid']]}.json").is_file()]
        for first in range(0, len(missing), chunk):
            part = missing[first : first + chunk]
            started = time.perf_counter()
            results = self._write_chunk([(i, positives[i["positives"][0]]) for i in part], generator)
            seconds = (time.perf_counter() - started) / len(part)
            for item, result in zip(part, results, strict=True):
                atomic_write_json(workdir / f"{keys[item['qid']]}.json", {**result, "seconds": round(seconds, 4)})
        counts = {"kept": 0, "malformed": 0, "revised": 0, "rejected_by_reflection": 0}
        negatives = {}
        seconds = 0.0
        for item in items:
            key = keys[item["qid"]]
            result = json.loads((workdir / f"{key}.json").read_text())
            counts[result["status"]] += 1
            seconds += result.get("seconds", 0.0)
            if result["status"] in ("kept", "revised"):
                negatives[item["qid"]] = Passage(id=f"syneg:{key}", text=result["negative"])
        self.log_ = [{"synthetic_negatives": counts, "generation_seconds": round(seconds, 2),
                      "generator": component_identity(generator), "prompt_version": PROMPT_VERSION,
                      "prompt_templates": {"negative": NEGATIVE_PROMPT, "reflect": REFLECT_PROMPT}}]
        return negatives

    def _ask(self, generator: Any, prompts: list[str], field: str, prefix: str) -> list[dict[str, Any] | None]:
        """Each prompt's JSON answer holding ``field``; malformed answers are asked again (with a
        stricter instruction) up to ``retries`` times, then None. With ``prefill`` the answer is
        started with ``prefix`` (the object's opening), which small models need to write JSON."""
        prefix = prefix if self.prefill else ""
        answers: list[dict[str, Any] | None] = [None] * len(prompts)
        for attempt in range(self.retries + 1):
            todo = [n for n, answer in enumerate(answers) if answer is None]
            if not todo:
                break
            texts = generator.generate([prompts[n] + (STRICT if attempt else "") for n in todo],
                                       max_new_tokens=self.max_new_tokens, **({"prefix": prefix} if prefix else {}))
            for n, text in zip(todo, texts, strict=True):
                value = parse_json_object(prefix + text)
                answers[n] = value if value is not None and field in value else None
        return answers

    def _write_chunk(self, pairs: list[tuple[Mapping[str, Any], Passage]], generator: Any) -> list[dict[str, Any]]:
        attributes = [self.attributes(item["qid"]) for item, _ in pairs]
        prompts = []
        for (item, positive), attrs in zip(pairs, attributes):
            prompt = NEGATIVE_PROMPT
            for name, value in {"query": item["query"], "positive": positive.contents(": "), **attrs}.items():
                prompt = prompt.replace("{" + name + "}", value)
            prompts.append(prompt)
        results: list[dict[str, Any]] = []
        negatives: dict[int, str] = {}
        for n, written in enumerate(self._ask(generator, prompts, "negative", NEGATIVE_PREFIX)):
            negative = str(written["negative"]).strip() if written is not None else ""
            results.append({"status": "kept" if negative else "malformed", **attributes[n],
                            **({"negative": negative} if negative else {})})
            if negative:
                negatives[n] = negative
        if not self.reflect or not negatives:
            return results
        reflect = [REFLECT_PROMPT.replace("{query}", pairs[n][0]["query"]).replace("{negative}", negative)
                   for n, negative in negatives.items()]
        for (n, negative), verdict in zip(negatives.items(), self._ask(generator, reflect, "answers_query", REFLECT_PREFIX)):
            if verdict is None or verdict["answers_query"] is not True:
                continue
            revised = str(verdict.get("revised") or "").strip()
            if revised and revised != negative:
                results[n].update(status="revised", negative=revised, original=negative)
            else:
                results[n]["status"] = "rejected_by_reflection"
        return results

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
