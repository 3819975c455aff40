"""PRAG's passage augmentation: the generator rewrites each passage ``rewrites`` times and
writes ``qa_pairs`` question-answer pairs about it.

QA pairs come in two steps: the generator lists questions the passage answers (one per
line; numbering, ``Q:`` / ``Question:`` labels stripped, lines without "?" dropped), then
answers each with the reader's ``direct`` prompt holding the passage, the answer turn
prefilled with "The answer is" and cut at its first clause, as answers are at test time.
PRAG asks for the pairs as one JSON list; SmolLM2-135M wrote no parseable list that way in
16 tries, while it does answer a question about a passage it is shown. Each passage's result is a JSON file named
by the passage, in a folder keyed by the generator and the prompts, so a passage is augmented
once across questions and runs; rejected outputs (empty rewrites, no question) are counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retbench import Component, Passage, atomic_write_json, component_identity, stage_key
from retbench_readers.prompts import answer_prefix, build_prompt, extract_answer

REWRITE_PROMPT = (
    "Rewrite the passage below so that it says the same things in different words. Keep every entity, "
    "name, place, date, number and technical term exactly as it is, and keep its meaning.\n\n{passage}"
)
QUESTION_PROMPT = "Passage: {passage}\n\nWrite {count} questions that this passage answers, one per line."
ANSWER_TEMPLATE = "direct"
LABEL = re.compile(r"^\s*(?:\d+[.)]|[-*•]|q\d*\s*:|question\s*\d*\s*:)\s*", re.IGNORECASE)
REWRITE_LABEL = re.compile(r"^\s*(?:rewritten passage|passage)\s*:\s*", re.IGNORECASE)
MIN_REWRITE_WORDS = 5


@dataclass
class AugmentedPassage:
    passage_id: str
    variants: list[str]
    qa: list[dict[str, str]]
    rejected: int = 0
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def parse_questions(text: str, limit: int) -> list[str]:
    """Distinct questions in a generated list, at most ``limit``."""
    questions: dict[str, None] = {}
    for line in text.splitlines():
        question = " ".join(LABEL.sub("", line).split())
        if "?" in question:
            questions.setdefault(question[: question.index("?") + 1], None)
    return list(questions)[:limit]


def clean_rewrite(text: str) -> str:
    """A rewrite without its label lines; empty when too short to be a passage."""
    lines = [REWRITE_LABEL.sub("", line).strip() for line in text.strip().splitlines()]
    rewrite = " ".join(line for line in lines if line)
    return rewrite if len(rewrite.split()) >= MIN_REWRITE_WORDS else ""


def passage_digest(passage: Passage) -> str:
    return hashlib.sha256(json.dumps([passage.id, passage.contents()]).encode()).hexdigest()[:32]


class PassageAugmenter(Component):
    """The ``prag-augment`` augmenter (usable alone through the Augmenter protocol)."""

    name = "prag-augment"
    version = "2"

    def __init__(self, rewrites: int = 1, qa_pairs: int = 3, rewrite_prompt: str = REWRITE_PROMPT,
                 question_prompt: str = QUESTION_PROMPT, answer_template: str = ANSWER_TEMPLATE,
                 rewrite_tokens: int = 512, question_tokens: int = 128, answer_tokens: int = 32) -> None:
        self.rewrites = rewrites
        self.qa_pairs = qa_pairs
        self.rewrite_prompt = rewrite_prompt
        self.question_prompt = question_prompt
        self.answer_template = answer_template
        self.rewrite_tokens = rewrite_tokens
        self.question_tokens = question_tokens
        self.answer_tokens = answer_tokens

    def store(self, generator: Any, root: Path) -> Path:
        """The folder of this augmenter's outputs for ``generator`` under ``root``."""
        return root / stage_key(augmenter=self.name, version=self.version, params=self.get_params(),
                                generator=component_identity(generator))[:24]

    def augment_passages(self, passages: Sequence[Passage], *, generator: Any, root: Path) -> list[AugmentedPassage]:
        """Augmented passages in the order given; cached ones are read, the rest generated in one batch."""
        folder = self.store(generator, root)
        done: dict[str, AugmentedPassage] = {}
        for passage in passages:
            path = folder / f"{passage_digest(passage)}.json"
            if path.is_file():
                done[passage.id] = AugmentedPassage(**json.loads(path.read_text()))
        todo = list({p.id: p for p in passages if p.id not in done}.values())
        if todo:
            for passage, item in zip(todo, self._generate(todo, generator), strict=True):
                atomic_write_json(folder / f"{passage_digest(passage)}.json", asdict(item))
                done[passage.id] = item
        return [done[p.id] for p in passages]

    def _generate(self, passages: list[Passage], generator: Any) -> list[AugmentedPassage]:
        began = time.perf_counter()
        texts = [p.contents(": ") for p in passages]
        prompts = [self.rewrite_prompt.replace("{passage}", t) for t in texts for _ in range(self.rewrites)]
        outputs = generator.generate(prompts, max_new_tokens=self.rewrite_tokens) if prompts else []
        rewrites = [outputs[i * self.rewrites : (i + 1) * self.rewrites] for i in range(len(texts))]
        listed = generator.generate([self.question_prompt.replace("{passage}", t).replace("{count}", str(self.qa_pairs))
                                     for t in texts], max_new_tokens=self.question_tokens)
        questions = [parse_questions(o, self.qa_pairs) for o in listed]
        asked = [(i, q) for i, qs in enumerate(questions) for q in qs]
        prefix = answer_prefix(self.answer_template)
        answers = generator.generate(
            [build_prompt(self.answer_template, q, [passages[i]]) for i, q in asked],
            max_new_tokens=self.answer_tokens, **({"prefix": prefix} if prefix else {})) if asked else []
        qa: list[list[dict[str, str]]] = [[] for _ in texts]
        for (i, question), output in zip(asked, answers, strict=True):
            answer = extract_answer(output, "first-clause")
            if answer:
                qa[i].append({"question": question, "answer": answer})
        seconds = round((time.perf_counter() - began) / len(passages), 4)
        results = []
        for i, passage in enumerate(passages):
            kept = list(dict.fromkeys(r for r in map(clean_rewrite, rewrites[i]) if r))
            results.append(AugmentedPassage(
                passage_id=passage.id, variants=[texts[i], *kept], qa=qa[i],
                rejected=self.rewrites - len(kept) + self.qa_pairs - len(qa[i]), seconds=seconds,
                meta={"version": self.version, "questions_output": listed[i]}))
        return results

    def augment(self, corpus: Any, *, generator: Any, workdir: Path) -> list[dict[str, Any]]:
        passages = list(corpus)
        items = self.augment_passages(passages, generator=generator, root=workdir)
        return [{"passage_id": i.passage_id, "variants": i.variants, "qa": i.qa, "rejected": i.rejected} for i in items]
