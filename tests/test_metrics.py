from __future__ import annotations

import math

import pytest

from retbench.errors import ConfigError
from retbench.metrics.answer import exact_match, normalize_answer, token_f1
from retbench.metrics.retrieval import remove_self_hits, score_run
from retbench.data.types import EvalRules

QRELS = {"q1": {"a": 1, "b": 0}, "q2": {"c": 2, "d": 1}, "q3": {"e": 0}}


def test_ndcg_matches_the_definition():
    run = {"q1": {"b": 2.0, "a": 1.0}, "q2": {"d": 2.0, "c": 1.0}}
    aggregate, per_query = score_run(["nDCG@10", "RR@10"], QRELS, run, EvalRules())
    assert per_query["q1"]["nDCG@10"] == pytest.approx(1 / math.log2(3))
    # trec_eval's nDCG (as in BEIR): linear gain = relevance grade
    ideal = 2 + 1 / math.log2(3)
    assert per_query["q2"]["nDCG@10"] == pytest.approx((1 + 2 / math.log2(3)) / ideal)
    assert per_query["q1"]["RR@10"] == 0.5
    assert set(per_query) == {"q1", "q2"}, "q3 has no relevant document and is not averaged"
    assert aggregate["nDCG@10"] == pytest.approx((per_query["q1"]["nDCG@10"] + per_query["q2"]["nDCG@10"]) / 2)


def test_a_query_missing_from_the_run_counts_zero():
    aggregate, per_query = score_run(["R@100"], QRELS, {"q1": {"a": 1.0}}, EvalRules())
    assert per_query["q2"]["R@100"] == 0.0
    assert aggregate["R@100"] == 0.5


def test_unknown_measure_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown metric 'nDGC@10'"):
        score_run(["nDGC@10"], QRELS, {}, EvalRules())


def test_self_hits_removed_and_cut_to_k():
    run = {"q1": {"q1": 9.0, "a": 5.0, "b": 4.0, "c": 3.0}}
    assert remove_self_hits(run, k=2) == {"q1": {"a": 5.0, "b": 4.0}}


def test_squad_normalisation_em_and_f1():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert exact_match("the Eiffel Tower", ["Eiffel Tower", "Paris"]) == 1.0
    assert exact_match("Tower", ["Eiffel Tower"]) == 0.0
    assert token_f1("Eiffel", ["Eiffel Tower"]) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("", ["x"]) == 0.0
