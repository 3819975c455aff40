"""Answer matching against the reference definitions (DPR has_answer, SQuAD EM/F1)."""

from __future__ import annotations

import pytest

from retbench.metrics.answer import exact_match, token_f1
from retbench.metrics.qa import TopKAccuracy, dpr_tokens, has_answer
from retbench.data.types import Corpus, DatasetSplit, EvalRules, Passage


def test_dpr_tokens_split_words_and_single_symbols():
    assert dpr_tokens("U.S. Army's 3rd-division, $5!") == ["u", ".", "s", ".", "army", "'", "s", "3rd", "-",
                                                            "division", ",", "$", "5", "!"]


@pytest.mark.parametrize(
    ("answers", "text", "expected"),
    [
        (["Paris"], "The capital is paris.", True),                    # case-insensitive
        (["New York"], "in new  york city", True),                      # token sequence, spacing
        (["York"], "Yorkshire pudding", False),                         # whole tokens only
        (["May 18 , 2018"], "released May 18, 2018 worldwide", True),   # DPR-tokenised answer
        (["Röntgen"], "Wilhelm Ro\u0308ntgen won", True),               # NFD: composed == decomposed
        (["Zürich", "Geneva"], "flights to geneva", True),              # any of several answers
        (["the Beatles"], "Beatles records", False),                    # no article stripping in has_answer
        (["42"], "The answer is 420", False),
        ([""], "anything", False),
    ],
)
def test_has_answer_string(answers, text, expected):
    assert has_answer(answers, text) is expected


def test_has_answer_regex_curatedtrec():
    assert has_answer([r"\d{4} B\.?C\.?"], "founded in 1200 BC by", match="regex")
    assert not has_answer([r"Mount (Everest|K2)"], "mount fuji", match="regex")
    assert not has_answer(["(unbalanced"], "(unbalanced", match="regex"), "a bad pattern never matches"


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        ("The Eiffel Tower", ["Eiffel Tower"], 1.0, 1.0),     # articles dropped
        ("eiffel tower!", ["Eiffel Tower."], 1.0, 1.0),       # punctuation dropped
        ("Tower", ["Eiffel Tower"], 0.0, 2 / 3),
        ("Paris, France", ["London", "Paris"], 0.0, 2 / 3),   # max over gold answers
        ("São Paulo", ["sao paulo"], 0.0, 0.5),               # SQuAD keeps accents: only "paulo" matches
        ("", ["x"], 0.0, 0.0),
    ],
)
def test_squad_em_f1(prediction, gold, em, f1):
    assert exact_match(prediction, gold) == em
    assert token_f1(prediction, gold) == pytest.approx(f1)


def test_top_k_accuracy_uses_the_first_answer_bearing_rank():
    corpus = Corpus.from_passages([Passage("a", "nothing here"), Passage("b", "the answer is Oslo"),
                                   Passage("c", "Oslo again")])
    split = DatasetSplit(name="t", split="test", corpus=corpus, queries={"q1": "x", "q2": "y"},
                         answers={"q1": ["Oslo"], "q2": ["Bergen"]}, rules=EvalRules())
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"b": 1.0}}
    scores = TopKAccuracy(ks=(1, 2)).compute(split, run=run, answers=None)
    assert scores == {"q1": {"Top-1": 0.0, "Top-2": 1.0}, "q2": {"Top-1": 0.0, "Top-2": 0.0}}
