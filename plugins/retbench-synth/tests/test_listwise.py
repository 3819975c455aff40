from __future__ import annotations

import re

import pytest

from retbench_synth.listwise import parse_permutation, rerank, window_starts


@pytest.mark.parametrize("text, order, clean", [
    ("[2] > [3] > [1]", [1, 2, 0], True),
    ("2, 3, 1", [1, 2, 0], True),
    ("[2] > [2] > [9] > [1]", [1, 0, 2], False),
    ("I cannot rank these.", [0, 1, 2], False),
    ("[3] > [1]", [2, 0, 1], False),
])
def test_a_generated_ranking_is_parsed_and_repaired(text, order, clean):
    assert parse_permutation(text, 3) == (order, clean)


def test_windows_slide_from_the_bottom_to_the_top():
    assert window_starts(20, 8, 4) == [12, 8, 4, 0]
    assert window_starts(10, 8, 4) == [2, 0]
    assert window_starts(5, 8, 4) == [0]


def test_sliding_windows_bring_the_best_candidates_to_the_front():
    scores = [3, 17, 5, 11, 19, 2, 8, 13, 1, 7, 16, 4, 12, 6, 18, 9, 15, 0, 14, 10]
    candidates = [f"passage with relevance {s}" for s in scores]

    def perfect(prompts):
        listed = re.findall(r"\[(\d+)\] passage with relevance (\d+)", prompts[0])
        best = sorted(listed, key=lambda x: -int(x[1]))
        return [" > ".join(f"[{n}]" for n, _ in best)]

    order, counts = rerank("q", candidates, perfect, window=8, step=4)
    assert sorted(order) == list(range(20))
    assert [scores[i] for i in order[:4]] == [19, 18, 17, 16]
    assert counts == {"windows": 4, "clean": 4, "repaired": 0}
