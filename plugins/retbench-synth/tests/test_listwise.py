from __future__ import annotations

import re

import pytest

from retbench_synth.listwise import parse_permutation, rerank, rerank_many, window_starts


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


def test_several_queries_rerank_in_one_batch_per_window_position():
    lists = [[f"passage with relevance {s}" for s in scores] for scores in ([3, 9, 1, 7, 5, 8, 2, 6, 4, 0], [2, 1, 3], [])]
    batches = []

    def perfect(prompts):
        batches.append(len(prompts))
        return [" > ".join(f"[{n}]" for n, _ in sorted(re.findall(r"\[(\d+)\] passage with relevance (\d+)", p),
                                                       key=lambda x: -int(x[1]))) for p in prompts]

    results = rerank_many(["q1", "q2", "q3"], lists, perfect, window=8, step=4)
    assert batches == [2, 1]
    assert results == [rerank(q, c, perfect, window=8, step=4) for q, c in zip(["q1", "q2", "q3"], lists)]
    assert results[1][0] == [2, 0, 1] and results[2] == ([], {"windows": 0, "clean": 0, "repaired": 0})
