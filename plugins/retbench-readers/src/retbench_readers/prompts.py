"""Prompt templates for generative readers, answer prefixes and short-answer extraction.

One module owns the text a generator sees when it answers and when it is trained to answer
(PRAG's LoRAs, DyPRAG's translator), so the two cannot drift apart.

``direct`` (the default): the structure of PRAG / DyPRAG's direct prompt (reference
``src/prompt_template.py``): an instruction to use the given knowledge with one's own, the
passages as "Passage i: ...", then the question (ending in "?"); the answer turn starts with
``"The answer is"`` and the answer is cut at its first ".", "," or newline. The wording is
ours. Closed book and the parametric readers use the same template with no passages (the
reference drops only the passages). ``short``: answer in a few words after "Answer:".
``cot``: reason step by step, finish with "So the answer is: ...". ``closed-book``: the
question alone. A custom template is any string with ``{question}`` and optionally
``{passages}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retbench import ConfigError, Passage

TEMPLATES = {
    "direct": (
        "Answer the question. Use the knowledge given below together with what you already know.\n"
        "{passages}\n\nQuestion: {question}"
    ),
    "short": (
        "Answer the question using the passages below and what you know. Reply with the answer "
        "only, in a few words.\n\n{passages}\n\nQuestion: {question}\nAnswer:"
    ),
    "cot": (
        "Answer the question using the passages below and what you know. Think step by step, "
        "then finish with \"So the answer is: <answer>.\" where <answer> is a few words.\n\n"
        "{passages}\n\nQuestion: {question}\nAnswer:"
    ),
    "closed-book": "Answer the question with the answer only, in a few words.\n\nQuestion: {question}\nAnswer:",
}
# The answer turn's opening per template ("auto" prefix). No trailing space: a lone space
# token after "is" is rare in training text and derails small models (measured, see
# docs/methods/prag-dyprag.md); the answer's first token carries its own space.
ANSWER_PREFIXES = {"direct": "The answer is"}
# Templates whose questions get a final "?" (the reference's _get_prompt does this).
QUESTION_MARK = {"direct"}
EXTRACTIONS = ("first-clause", "line")
QUESTION_LINE = re.compile(r"^(question|q)\s*:", re.IGNORECASE)
ANSWER_IS = re.compile(r"(?:so )?the answer is:?\s*(.+)", re.IGNORECASE | re.DOTALL)
FIRST_CLAUSE_STOPS = (".", "\n", ",")


def template_text(template: str) -> str:
    text = TEMPLATES.get(template, template)
    if "{question}" not in text:
        raise ConfigError(f"template '{template}' is neither a known name ({', '.join(TEMPLATES)}) "
                          "nor a string containing {question}")
    return text


def answer_prefix(template: str, prefix: str = "auto") -> str:
    """The text the answer turn starts with: the template's own for ``auto``."""
    return ANSWER_PREFIXES.get(template, "") if prefix == "auto" else prefix


def extraction_style(template: str, style: str = "auto") -> str:
    if style == "auto":
        return "first-clause" if template == "direct" else "line"
    if style not in EXTRACTIONS:
        raise ConfigError(f"extraction must be auto or one of {', '.join(EXTRACTIONS)}, got '{style}'")
    return style


def as_question(question: str, template: str) -> str:
    question = question.strip()
    if template in QUESTION_MARK:
        question = question[:-1].rstrip() + "?" if question.endswith("?") else question + "?"
    return question


def format_passages(passages: Sequence[Passage]) -> str:
    return "\n".join(f"Passage {i}: {p.contents(': ')}" for i, p in enumerate(passages, 1))


def build_prompt(template: str, question: str, passages: Sequence[Passage]) -> str:
    """The user turn for ``question``; the same template with or without passages."""
    text = template_text(template)
    return text.replace("{passages}", format_passages(passages)).replace("{question}", as_question(question, template))


def answer_sentence(answer: str, prefix: str) -> str:
    """The answer turn a model is trained on: ``prefix`` + the answer, ending with "."."""
    answer = answer.strip()
    answer = answer if answer.endswith(".") else answer + "."
    return f"{prefix} {answer}" if prefix else answer


def extract_answer(output: str, style: str = "line") -> str:
    """The short answer in a generation.

    ``first-clause`` (the reference's direct evaluation): the output up to its first ".",
    newline or ","; an opening "The answer is" (a generation that was not prefilled) and ":"
    are dropped first. ``line``: what follows "the answer is" if present, else the first
    non-empty line that does not repeat a "Question: ..." (small models echo the prompt's
    format); quotes, "Answer:" and a final period removed.
    """
    text = output.strip()
    if style == "first-clause":
        found = ANSWER_IS.match(text)
        text = (found.group(1) if found else text).lstrip(":").strip()
        for stop in FIRST_CLAUSE_STOPS:
            if stop in text:
                text = text[: text.index(stop)].strip()
        return text.strip("\"'“”").strip()
    found = ANSWER_IS.search(text)
    if found:
        text = found.group(1)
    lines = [part.strip() for part in text.splitlines() if part.strip()]
    line = next((part for part in lines if not QUESTION_LINE.match(part)), "")
    line = re.sub(r"^(answer|a)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'“”").rstrip(".").strip()
