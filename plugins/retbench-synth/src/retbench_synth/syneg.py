"""The ``syneg`` negative sampler (Li et al., 2024, SyNeg): LLM-written hard negatives mixed
with retrieved ones inside every training instance.

Generation (the paper's multi-attribute self-reflection prompt): for each training (query,
positive) pair the generator, cast as an expert in a domain, writes one hard negative in
JSON, its ``reasoning`` first (why the document is close to the query yet does not answer it)
and then the document (``reasoning=false``, a deviation: the document alone, for a small
generator that never closes its reasoning), under attribute constraints drawn per pair with ``seed``: a domain, a
reader education level and a length relative to the positive (``attributes``: a preset, the
paper's SciFact sets by default, or ``{"domains", "levels", "lengths"}``). Malformed JSON is
retried ``retries`` times with a stricter instruction, then the pair is skipped and counted.
``min_words`` (0 by default: the paper keeps any parsed document) drops a written negative of
fewer words, counted as ``too_short``; a 135M generator often writes a bare URL or a title in
the document field, and a negative that short cannot be a hard one. It filters cached
generations, so changing it regenerates nothing.
``prompt=abstract`` (a deviation for generators below ~1B, which cannot follow the paper's
prompt) asks in one plain-text line for the abstract of an article with the positive's title,
of the positive's length, under the same drawn domain and level, the answer started with
"Background: " (``prefill``); the prompt holds neither the query nor the positive's text.
``verify`` (off by default, not in the paper) adds a separate check: ``true`` asks the generator
whether its passage answers the query, and one that does is replaced by the revision it
offers or dropped; ``likelihood`` compares the generator's log p("Yes") and log p("No") as the
answer to that question and drops a negative whose margin exceeds ``verify_margin``, scoring the
pair's positive the same way so the log shows whether the verifier tells them apart. Generations and verdicts are cached one file per pair in the run's shared
generation cache (beside the augmenters'), keyed by what makes them, with the seconds they
took; an interrupted generation resumes, a run that changes only training settings
regenerates nothing, and switching ``verify`` reuses the generations.

Mixing (the paper's hybrid strategy): ``mix=hybrid`` gives every instance whose query has a
synthetic negative exactly that one plus ``k - 1`` retrieved ones (``retrieved``: ``bm25-hard``
by default), so it needs the retriever's ``hard_negatives`` >= 2; ``mix=synthetic-only`` the
synthetic negative alone (the paper's pure-synthetic ablation). ``synthetic_share``: the
share of training queries given a synthetic negative (drawn per query with ``seed``; 1.0,
every query, as the hybrid strategy is described). The paper's best "ratio R = 0.7" is not
defined in the material read, so no parameter claims to be it. A query without a kept
synthetic negative gets ``k`` retrieved ones (``synthetic-only``: none). The log counts, per
instance trained on, how many synthetic and retrieved negatives it had.

``loss_temperature``: the InfoNCE temperature the paper found best (0.017 for BGE, 0.01 for
COCO-DR); a retriever whose own ``temperature`` is ``auto`` trains with it.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, Passage, atomic_write_json, component_identity
from retbench_synth.json_output import parse_json_object
from retbench_synth.members import BuildsComponents

ATTRIBUTES = {
    "scifact": {
        "domains": ["Epidemiology", "Public Health", "Virology", "Biostatistics", "Healthcare Policy",
                    "Infectious Diseases", "Bioinformatics", "Medical Research", "Pharmacology"],
        "levels": ["Foundational (Equivalent to Elementary and Middle School)",
                   "Intermediate (High School and Undergraduate)"],
        "lengths": ["approximately the same as", "nearly the same as"],
        "query_name": "claim",
    },
}
MIXES = ("hybrid", "synthetic-only")
PROMPTS = ("paper", "abstract")
VERIFIES = (False, True, "likelihood")
NEGATIVE_PROMPT = (
    "Assume you are an expert in {domain}. Below is an example: a \"user_query\" and a \"positive_document\" "
    "relevant to it.\nExample: {example}\n\n"
    "[Task Definition]\nWrite one hard negative document for the user_query.\n"
    "{reasoning_definition}"
    "[Hard Negatives Definition]\nA hard negative document is on the user_query's topic and shares many of its "
    "terms, so a search engine may rank it high, but it does not answer the user_query.\n"
    "[Attributes Definition]\nThe document should be understandable at the education level {level}, and its "
    "length should be {length} the positive_document.\n"
    "[Format Definition]\n{format}"
)
REASONING_DEFINITION = (
    "[Reasoning Definition]\nFirst reason step by step: what the user_query asks, which details make the "
    "positive_document relevant, and how a document can stay close to the query's topic and wording without "
    "giving that information.\n"
)
FORMATS = {
    True: "Reply with a JSON object with two fields, in this order: \"reasoning\" (your reasoning) and "
          "\"hard_negative_document\" (the document).",
    False: "Reply with a JSON object with one field, \"hard_negative_document\" (the document).",
}
VERIFY_PROMPT = (
    "Query: {query}\nPassage: {negative}\n\nDoes the passage answer the query? Reply with a JSON object: "
    "\"answers_query\" (true or false) and \"revised\" (the passage rewritten so that it no longer answers the "
    "query, or an empty string when it does not answer it)."
)
ABSTRACT_PROMPT = (
    "Assume you are an expert in {domain}. Write the abstract, of about {words} words and understandable at the "
    "education level {level}, of a research article titled \"{title}\"."
)
ABSTRACT_PREFIX = "Background: "
LIKELIHOOD_PROMPT = (
    "{Query_name}: {query}\nPassage: {passage}\n\nDoes the passage answer, support or refute the {query_name}? "
    "Answer Yes or No."
)
VERDICTS = ("Yes", "No")
NEGATIVE_FIELD = "hard_negative_document"
NEGATIVE_PREFIX = '{"reasoning": "'
DOCUMENT_PREFIX = '{"hard_negative_document": "'
VERIFY_PREFIX = '{"answers_query": '
STRICT = "\nReply with one valid JSON object and nothing else."
PROMPT_VERSION = "3"


def fill(template: str, parts: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced (str.format would trip on the JSON braces)."""
    for name, value in parts.items():
        template = template.replace("{" + name + "}", value)
    return template


class SynegNegatives(BuildsComponents, Component):
    name = "syneg"
    version = "2"

    def __init__(self, mix: str = "hybrid", synthetic_share: float = 1.0, retrieved: str = "bm25-hard",
                 retrieved_args: dict[str, Any] | None = None, attributes: str | dict[str, list[str]] = "scifact",
                 prompt: str = "paper", reasoning: bool = True, retries: int = 1, min_words: int = 0,
                 verify: bool | str = False, verify_margin: float = 0.0, prefill: bool = True, max_new_tokens: int = 512,
                 loss_temperature: float | None = 0.017, seed: int = 0) -> None:
        self.mix = mix
        self.synthetic_share = synthetic_share
        self.retrieved = retrieved
        self.retrieved_args = retrieved_args
        self.attributes = attributes
        self.prompt = prompt
        self.reasoning = reasoning
        self.retries = retries
        self.min_words = min_words
        self.verify = verify
        self.verify_margin = verify_margin
        self.prefill = prefill
        self.max_new_tokens = max_new_tokens
        self.loss_temperature = loss_temperature
        self.seed = seed

    def validate(self) -> None:
        if self.mix not in MIXES:
            raise ConfigError(f"syneg: mix must be one of {', '.join(MIXES)}, got '{self.mix}'")
        if self.prompt not in PROMPTS:
            raise ConfigError(f"syneg: prompt must be one of {', '.join(PROMPTS)}, got '{self.prompt}'")
        if self.verify not in VERIFIES:
            raise ConfigError(f"syneg: verify must be false, true or likelihood, got '{self.verify}'")
        if self.min_words < 0:
            raise ConfigError(f"syneg: min_words must be >= 0, got {self.min_words}")
        if not 0 < self.synthetic_share <= 1:
            raise ConfigError(f"syneg: synthetic_share must be in (0, 1], got {self.synthetic_share}")
        self.attribute_sets()

    def attribute_sets(self) -> dict[str, list[str]]:
        if isinstance(self.attributes, str):
            if self.attributes not in ATTRIBUTES:
                raise ConfigError(f"syneg: attributes '{self.attributes}' is not a preset ({', '.join(ATTRIBUTES)}); "
                                  "or give {\"domains\": [...], \"levels\": [...], \"lengths\": [...]}")
            return dict(ATTRIBUTES[self.attributes])
        missing = [k for k in ("domains", "levels", "lengths") if not self.attributes.get(k)]
        if missing:
            raise ConfigError(f"syneg: attributes needs non-empty {', '.join(missing)}")
        return {**{k: list(self.attributes[k]) for k in ("domains", "levels", "lengths")},
                "query_name": str(self.attributes.get("query_name", "query"))}

    @property
    def log(self) -> list[dict[str, Any]]:
        mix = getattr(self, "mix_counts_", None)
        entries = list(getattr(self, "log_", []))
        if mix is not None:
            entries.append({"mix": self.mix, "instances": sum(mix.values()),
                            "per_instance": {f"{s} synthetic + {r} retrieved": n for (s, r), n in sorted(mix.items())},
                            "synthetic_negatives": sum(s * n for (s, _), n in mix.items()),
                            "retrieved_negatives": sum(r * n for (_, r), n in mix.items())})
        return entries + list(getattr(getattr(self, "base_", None), "log", []))

    def set_augment_generator(self, generator: Any) -> None:
        """The generator writing the negatives: the run's (``--augment-generator``, else
        ``--generator``), so it is loaded once and its identity enters the fit stage's key. Handed
        over while the run resolves its components, so a generator ``verify=likelihood`` cannot use
        fails before any model loads."""
        if self.verify == "likelihood" and not hasattr(generator, "loglikelihood"):
            raise ConfigError(f"syneg: verify=likelihood needs a generator with loglikelihood; "
                              f"'{getattr(generator, 'name', type(generator).__name__)}' has none")
        self.generator_ = generator

    def set_generation_cache(self, folder: Path) -> None:
        """The run's shared generation cache (``$RETBENCH_HOME/augment/shared``), which outlives
        any one fit, so a run changing only training settings reuses the negatives."""
        self.cache_ = folder

    def pair_attributes(self, qid: str) -> dict[str, str]:
        sets = self.attribute_sets()
        rng = random.Random(f"{self.seed}:{qid}")
        return {"domain": rng.choice(sets["domains"]), "level": rng.choice(sets["levels"]),
                "length": rng.choice(sets["lengths"])}

    def gets_synthetic(self, qid: str) -> bool:
        return self.synthetic_share >= 1 or random.Random(f"{self.seed}:share:{qid}").random() < self.synthetic_share

    def prepare(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any,
                hard_negatives: Mapping[str, list[str]], workdir: Path) -> None:
        self.validate()
        wanted = getattr(retriever, "training_", {}).get("hard_negatives") if retriever is not None else None
        if self.mix == "hybrid" and isinstance(wanted, int) and wanted < 2:
            raise ConfigError(f"syneg: mix=hybrid is 1 synthetic + N retrieved negatives per instance, N = "
                              f"hard_negatives - 1 >= 1, but the retriever trains with hard_negatives={wanted} "
                              "(set --retriever-arg hard_negatives=3, or --negatives-arg mix=synthetic-only)")
        self.base_ = self.build_component("negative_samplers", self.retrieved, self.retrieved_args)
        if hasattr(self.base_, "prepare"):
            self.base_.prepare(items, corpus=corpus, retriever=retriever, hard_negatives=hard_negatives,
                               workdir=workdir / "retrieved")
        generator = getattr(self, "generator_", None)
        if generator is None:
            raise ConfigError("syneg: no generator to write negatives (a run gives its own; in code call "
                              "set_augment_generator)")
        folder = getattr(self, "cache_", None) or workdir
        chosen = [i for i in items if self.gets_synthetic(i["qid"])]
        self.synthetic_ = self.write_negatives(chosen, corpus=corpus, generator=generator, workdir=folder / "syneg")
        self.log_[0]["queries_with_synthetic"] = len(chosen)
        self.log_[0]["queries"] = len(items)
        self.mix_counts_: Counter[tuple[int, int]] = Counter()

    def pair_key(self, item: Mapping[str, Any], generator: Any) -> str:
        setting = [component_identity(generator), PROMPT_VERSION, self.pair_attributes(item["qid"]), self.reasoning, self.retries,
                   self.prefill, self.max_new_tokens]
        if self.prompt != "paper":
            setting.append([ABSTRACT_PROMPT, ABSTRACT_PREFIX])
        return hashlib.sha256(json.dumps([item["query"], item["positives"][0], setting],
                                         default=str).encode()).hexdigest()[:32]

    def write_negatives(self, items: Sequence[Mapping[str, Any]], *, corpus: Corpus, generator: Any,
                        workdir: Path, chunk: int = 64) -> dict[str, Passage]:
        """{qid: synthetic negative}; one cached file per (query, positive) pair and, with
        ``verify``, one per verdict; missing ones are made ``chunk`` at a time (a call of
        that many prompts lets the generator batch prompts of similar length together)."""
        workdir.mkdir(parents=True, exist_ok=True)
        positives = {p.id: p for p in corpus.get(sorted({i["positives"][0] for i in items}))}
        keys = {i["qid"]: self.pair_key(i, generator) for i in items}
        written = self._cached(workdir, items, keys, ".json",
                               lambda part: self._write_chunk([(i, positives[i["positives"][0]]) for i in part],
                                                              generator), chunk=chunk)
        too_short = {i["qid"] for i in items if written[i["qid"]]["status"] == "kept"
                     and len(written[i["qid"]]["negative"].split()) < self.min_words}
        verdicts: dict[str, dict[str, Any]] = {}
        if self.verify:
            usable = [i for i in items if written[i["qid"]]["status"] == "kept" and i["qid"] not in too_short]
            if self.verify == "likelihood":
                scored = self._cached(workdir, usable, keys, "." + hashlib.sha256(json.dumps(
                    [LIKELIHOOD_PROMPT, VERDICTS, self.attribute_sets()["query_name"]]).encode()).hexdigest()[:12]
                    + ".likelihood.json", lambda part: self._likelihood_chunk(part, written, positives, generator),
                    chunk=chunk)
                verdicts = {q: {**v, "status": "rejected_by_verification" if v["margin"] > self.verify_margin
                                else "kept"} for q, v in scored.items()}
            else:
                suffix = "." + hashlib.sha256(json.dumps([VERIFY_PROMPT, self.retries, self.prefill,
                                                          self.max_new_tokens]).encode()).hexdigest()[:12] + ".verify.json"
                verdicts = self._cached(workdir, usable, keys, suffix,
                                        lambda part: self._verify_chunk(part, written, generator), chunk=chunk)
        counts = {"kept": 0, "malformed": 0, "too_short": 0, "revised": 0, "rejected_by_verification": 0}
        negatives = {}
        seconds = 0.0
        for item in items:
            result = {**written[item["qid"]], **verdicts.get(item["qid"], {})}
            if item["qid"] in too_short:
                result["status"] = "too_short"
            seconds += written[item["qid"]].get("seconds", 0.0) + verdicts.get(item["qid"], {}).get("seconds", 0.0)
            counts[result["status"]] += 1
            if result["status"] in ("kept", "revised"):
                negatives[item["qid"]] = Passage(id=f"syneg:{keys[item['qid']]}", text=result["negative"])
        self.generation_seconds_ = round(seconds, 2)
        templates = ({"negative": NEGATIVE_PROMPT, "format": FORMATS[self.reasoning],
                      **({"reasoning_definition": REASONING_DEFINITION} if self.reasoning else {})}
                     if self.prompt == "paper" else {"negative": ABSTRACT_PROMPT})
        if self.verify:
            templates["verify"] = LIKELIHOOD_PROMPT if self.verify == "likelihood" else VERIFY_PROMPT
        self.log_ = [{"synthetic_negatives": counts, "generation_seconds": self.generation_seconds_,
                      "generator": component_identity(generator), "prompt": self.prompt,
                      "prompt_version": PROMPT_VERSION, "attributes": self.attribute_sets(),
                      "prompt_templates": templates}]
        if self.verify == "likelihood":
            self.log_[0]["verifier"] = self.verifier_summary(verdicts)
        return negatives

    def verifier_summary(self, verdicts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """How the likelihood verifier judged the written negatives and, as its calibration, the
        pairs' own positives: a verifier that cannot tell them apart filters at random."""
        def share(margins: list[float]) -> float | None:
            return round(sum(m > self.verify_margin for m in margins) / len(margins), 4) if margins else None

        negatives = [float(v["margin"]) for v in verdicts.values()]
        positives = [float(v["positive_margin"]) for v in verdicts.values()]
        ranked = sum(p > n for p, n in zip(positives, negatives))
        return {"judged": len(negatives), "margin": self.verify_margin,
                "negatives_judged_answering": share(negatives), "positives_judged_answering": share(positives),
                "positive_above_negative": round(ranked / len(negatives), 4) if negatives else None}

    @staticmethod
    def _cached(workdir: Path, items: Sequence[Mapping[str, Any]], keys: dict[str, str], suffix: str, make: Any,
                chunk: int = 16) -> dict[str, dict[str, Any]]:
        """{qid: result}: cached files read, the rest made ``chunk`` at a time and written with
        the seconds per pair they took."""
        missing = [i for i in items if not (workdir / f"{keys[i['qid']]}{suffix}").is_file()]
        for first in range(0, len(missing), chunk):
            part = missing[first : first + chunk]
            started = time.perf_counter()
            results = make(part)
            seconds = round((time.perf_counter() - started) / len(part), 4)
            for item, result in zip(part, results, strict=True):
                atomic_write_json(workdir / f"{keys[item['qid']]}{suffix}", {**result, "seconds": seconds})
        return {i["qid"]: json.loads((workdir / f"{keys[i['qid']]}{suffix}").read_text()) for i in items}

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
        if self.prompt == "abstract":
            return self._write_abstracts(pairs, generator)
        attributes = [self.pair_attributes(item["qid"]) for item, _ in pairs]
        prompts = []
        for (item, positive), attrs in zip(pairs, attributes):
            example = json.dumps({"user_query": item["query"], "positive_document": positive.contents(": ")},
                                 ensure_ascii=False)
            prompts.append(fill(NEGATIVE_PROMPT, {"reasoning_definition": REASONING_DEFINITION if self.reasoning else "",
                                                  "format": FORMATS[self.reasoning], "example": example, **attrs}))
        results = []
        for attrs, written in zip(attributes, self._ask(generator, prompts, NEGATIVE_FIELD,
                                                           NEGATIVE_PREFIX if self.reasoning else DOCUMENT_PREFIX)):
            negative = str(written[NEGATIVE_FIELD]).strip() if written is not None else ""
            reasoning = str(written.get("reasoning", "")).strip() if written is not None else ""
            results.append({"status": "kept" if negative else "malformed", **attrs,
                            **({"negative": negative, "reasoning": reasoning} if negative else {})})
        return results

    def _write_abstracts(self, pairs: list[tuple[Mapping[str, Any], Passage]], generator: Any) -> list[dict[str, Any]]:
        """``prompt=abstract``: one plain-text instruction per pair, the abstract of an article
        with the positive's title (the query when it has none) under the drawn domain and level and
        the positive's length in words (rounded to ten), the answer started with "Background: "."""
        attributes = [self.pair_attributes(item["qid"]) for item, _ in pairs]
        prompts = [fill(ABSTRACT_PROMPT, {"domain": attrs["domain"], "level": attrs["level"],
                                          "title": positive.title or item["query"],
                                          "words": str(max(10, round(len(positive.text.split()), -1)))})
                   for (item, positive), attrs in zip(pairs, attributes)]
        prefix = ABSTRACT_PREFIX if self.prefill else ""
        texts = [text.strip() for text in generator.generate(prompts, max_new_tokens=self.max_new_tokens,
                                                              **({"prefix": prefix} if prefix else {}))]
        return [{"status": "kept" if text else "malformed", **attrs, **({"negative": prefix + text} if text else {})}
                for attrs, text in zip(attributes, texts)]

    def _likelihood_chunk(self, items: list[Mapping[str, Any]], written: dict[str, dict[str, Any]],
                          positives: Mapping[str, Passage], generator: Any) -> list[dict[str, Any]]:
        """``verify=likelihood``: log p(Yes) - log p(No) as the generator's answer to whether a
        passage answers the query, for the written negative and (calibration) the positive."""
        name = self.attribute_sets()["query_name"]
        format_prompt = getattr(generator, "format", lambda text: text)

        def context(query: str, passage: str) -> str:
            return format_prompt(fill(LIKELIHOOD_PROMPT, {"Query_name": name[:1].upper() + name[1:], "query_name": name,
                                                          "query": query, "passage": passage}))

        contexts = []
        for item in items:
            contexts += [context(item["query"], written[item["qid"]]["negative"]),
                         context(item["query"], positives[item["positives"][0]].contents(": "))]
        yes = generator.loglikelihood(contexts, [VERDICTS[0]] * len(contexts))
        no = generator.loglikelihood(contexts, [VERDICTS[1]] * len(contexts))
        margins = [round(y - n, 4) for y, n in zip(yes, no)]
        return [{"margin": margins[2 * n], "positive_margin": margins[2 * n + 1]} for n in range(len(items))]

    def _verify_chunk(self, items: list[Mapping[str, Any]], written: dict[str, dict[str, Any]],
                      generator: Any) -> list[dict[str, Any]]:
        prompts = [fill(VERIFY_PROMPT, {"query": i["query"], "negative": written[i["qid"]]["negative"]}) for i in items]
        results = []
        for item, verdict in zip(items, self._ask(generator, prompts, "answers_query", VERIFY_PREFIX)):
            if verdict is None or verdict["answers_query"] is not True:
                results.append({"status": "kept", "verdict": "unparsed" if verdict is None else "does not answer"})
                continue
            revised = str(verdict.get("revised") or "").strip()
            if revised and revised != written[item["qid"]]["negative"]:
                results.append({"status": "revised", "negative": revised, "verdict": "answers"})
            else:
                results.append({"status": "rejected_by_verification", "verdict": "answers"})
        return results

    def on_step(self, step: int, *, items: Sequence[Mapping[str, Any]], corpus: Corpus, retriever: Any) -> None:
        if hasattr(self.base_, "on_step"):
            self.base_.on_step(step, items=items, corpus=corpus, retriever=retriever)

    def sample(self, batch: Sequence[Mapping[str, Any]], *, corpus: Corpus, retriever: Any, k: int,
               seed: int) -> list[list[str | Passage]]:
        if self.mix == "hybrid" and k < 2:
            raise ConfigError(f"syneg: mix=hybrid needs k = hard_negatives >= 2 (1 synthetic + k - 1 retrieved), "
                              f"got {k} (or --negatives-arg mix=synthetic-only)")
        retrieved = self.base_.sample(batch, corpus=corpus, retriever=retriever, k=k, seed=seed)
        chosen: list[list[str | Passage]] = []
        for item, others in zip(batch, retrieved, strict=True):
            synthetic = self.synthetic_.get(item["qid"])
            if self.mix == "synthetic-only":
                picks: list[str | Passage] = [synthetic] if synthetic is not None else []
            elif synthetic is None:
                picks = list(others[:k])
            else:
                picks = [synthetic, *others[: k - 1]]
            has = int(synthetic is not None and bool(picks) and picks[0] is synthetic)
            self.mix_counts_[(has, len(picks) - has)] += 1
            chosen.append(picks)
        return chosen
