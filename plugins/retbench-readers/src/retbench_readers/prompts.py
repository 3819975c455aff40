"""Prompt templates for generative readers, and short-answer extraction.

``short``: the in-context baseline of the PRAG / DyPRAG / FlashRAG papers for short-answer QA
(passages, then the question, answer in a few words). ``cot``: the multi-hop variant (reason
step by step, finish with "So the answer is: ..."). ``closed-book``: the question alone.
A custom template is any string with ``{question}`` and optionally ``{passages}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retbench import ConfigError, Passage

TEMPLATES = {
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
QUESTION_LINE = re.compile(r"^(question|q)\s*:", re.IGNORECASE)
ANSWER_IS = re.compile(r"(?:so )?the answer is:?\s*(.+)", re.IGNORECASE | re.DOTALL)


def template_text(template: str) -> str:
    text = TEMPLATES.get(template, template)
    if "{question}" not in text:
        raise ConfigError(f"template '{template}' is neither a known name ({', '.join(TEMPLATES)}) "
                          "nor a string containing {question}")
    return text


def format_passages(passages: Sequence[Passage]) -> str:
    return "\n".join(f"Passage {i}: {p.contents(': ')}" for i, p in enumerate(passages, 1))


def build_prompt(template: str, question: str, passages: Sequence[Passage]) -> str:
    text = template_text(template)
    return text.replace("{passages}", format_passages(passages)).replace("{question}", question)


def extract_answer(output: str) -> str:
    """The short answer in a generation: what follows "the answer is" if present, else the
    first non-empty line that does not repeat a "Question: ..." (small models often echo the
    prompt's format); surrounding quotes, "Answer:" and a final period removed."""
    text = output.strip()
    found = ANSWER_IS.search(text)
    if found:
        text = found.group(1)
    lines = [part.strip() for part in text.splitlines() if part.strip()]
    line = next((part for part in lines if not QUESTION_LINE.match(part)), "")
    line = re.sub(r"^(answer|a)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'“”").rstrip(".").strip()
