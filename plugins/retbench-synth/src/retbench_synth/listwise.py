"""Listwise reranking with a generator (RankGPT-style, as DRAMA's ``rerank`` step uses it).

The generator sees a query and numbered candidates and answers with an order such as
``[2] > [3] > [1]``. Its answer is parsed robustly: every number in order of appearance, each
kept once, out-of-range numbers dropped, candidates it left out appended in their original
order. When there are more candidates than fit in one prompt, a window of ``window``
candidates slides from the bottom of the list to the top by ``step``, so the best candidates
bubble up to the front.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

PROMPT = (
    "Rank the {count} passages below by how relevant they are to the search query. Answer with "
    "their identifiers only, most relevant first, like [2] > [1] > [3].\n\nQuery: {query}\n\n{passages}\n\nRanking:"
)
NUMBER = re.compile(r"\d+")


def parse_permutation(text: str, count: int) -> tuple[list[int], bool]:
    """Zero-based order of ``count`` candidates from a generated ranking of 1-based numbers, and
    whether the answer named every candidate exactly once with nothing else (clean)."""
    numbers = [int(n) for n in NUMBER.findall(text)]
    order: list[int] = []
    for number in numbers:
        if 1 <= number <= count and number - 1 not in order:
            order.append(number - 1)
    clean = len(numbers) == count and len(order) == count
    return order + [i for i in range(count) if i not in order], clean


def window_starts(count: int, window: int, step: int) -> list[int]:
    """Start positions of the sliding windows, from the bottom of the list to the top."""
    if count <= window:
        return [0]
    starts = list(range(count - window, 0, -step))
    return starts + [0] if starts[-1] != 0 else starts


def rerank(query: str, candidates: Sequence[str], rank: Callable[[list[str]], list[str]], *, window: int = 8,
           step: int = 4, max_chars: int = 300, prompt: str = PROMPT) -> tuple[list[int], dict[str, int]]:
    """The candidates' new order (indices into ``candidates``) and counts of clean / repaired
    answers. ``rank`` maps prompts to generations (the generator's ``generate``)."""
    return rerank_many([query], [candidates], rank, window=window, step=step, max_chars=max_chars, prompt=prompt)[0]


def rerank_many(queries: Sequence[str], candidates: Sequence[Sequence[str]], rank: Callable[[list[str]], list[str]],
                *, window: int = 8, step: int = 4, max_chars: int = 300, prompt: str = PROMPT
                ) -> list[tuple[list[int], dict[str, int]]]:
    """``rerank`` for several queries at once: their windows slide in step, so each position's
    windows go to ``rank`` as one batch of prompts."""
    orders = [list(range(len(c))) for c in candidates]
    counts = [{"windows": 0, "clean": 0, "repaired": 0} for _ in queries]
    starts = [window_starts(len(c), window, step) if c else [] for c in candidates]
    for position in range(max((len(s) for s in starts), default=0)):
        active = [i for i, s in enumerate(starts) if position < len(s)]
        parts = [orders[i][starts[i][position] : starts[i][position] + window] for i in active]
        prompts = [prompt.replace("{count}", str(len(part))).replace("{query}", queries[i]).replace(
                   "{passages}", "\n".join(f"[{n}] {candidates[i][c][:max_chars]}" for n, c in enumerate(part, 1)))
                   for i, part in zip(active, parts)]
        for i, part, text in zip(active, parts, rank(prompts), strict=True):
            permutation, clean = parse_permutation(text, len(part))
            start = starts[i][position]
            orders[i][start : start + window] = [part[p] for p in permutation]
            counts[i]["windows"] += 1
            counts[i]["clean" if clean else "repaired"] += 1
    return list(zip(orders, counts))
