"""Training a dense retriever's query tower against its fixed index, as REALM / ORQA fine-tune
(the ``realm`` reader drives it; the retriever offers the tower, the neighbours and the swap)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import retbench_dense.plugin
import retbench_readers.plugin
from retbench import ConfigError, RunConfig, evaluate
from retbench.testing import make_plugin_manager, mock_split
from retbench_dense.retriever import DPR
from retbench_readers.realm import RealmReader


def indexed_dpr(model, tmp_path, **params):
    retriever = DPR(model=str(model), pooling="mean", passage_model=None, **params)
    retriever.index(mock_split().corpus, workdir=tmp_path)
    return retriever


def test_neighbours_are_the_search_results_with_their_indexed_vectors(retbench_tiny_bert, tmp_path):
    retriever = indexed_dpr(retbench_tiny_bert, tmp_path)
    queries = {"q1": "capital of France", "q2": "river through Vienna"}
    run = retriever.search(queries, k=3)
    found = retriever.neighbours(retriever.encode_queries(list(queries.values())), k=3)
    corpus = mock_split().corpus
    for qid, (ids, vectors) in zip(queries, found):
        assert ids == sorted(run[qid], key=lambda d: -run[qid][d])
        expected = retriever.encode_passages(corpus.get(ids))
        np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_the_trainable_tower_starts_as_the_query_side_and_leaves_it_alone(retbench_tiny_bert, tmp_path):
    retriever = indexed_dpr(retbench_tiny_bert, tmp_path)
    tower = retriever.trainable_query_encoder().eval()  # no dropout while comparing
    texts = ["capital of France", "highest mountain"]
    np.testing.assert_allclose(tower(texts).detach().numpy(), retriever.encode_queries(texts), atol=1e-5)
    before = retriever.encode_queries(texts)
    optimizer = torch.optim.SGD(tower.parameters(), lr=1.0)
    tower(texts).sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(retriever.encode_queries(texts), before)  # a copy was trained
    tower.save(tmp_path / "tower")
    retriever.use_query_encoder(tmp_path / "tower")
    assert not np.allclose(retriever.encode_queries(texts), before)
    np.testing.assert_allclose(retriever.encode_queries(texts), tower(texts).detach().numpy(), atol=1e-5)


def realm_config(model, **reader_args):
    args = {"model": str(model), "epochs": 3, "questions_per_step": 2, "learning_rate": 1e-3, "k": 2,
            "train_k": 2, "warmup_ratio": 0.0, "retrieval_temperature": 0.1, **reader_args}
    return RunConfig(dataset="mock", retriever="dpr", reader="realm", fit_split="train", fit_only="reader",
                     reader_args=args,
                     retriever_args={"model": str(model), "pooling": "mean", "passage_model": None})


def test_realm_trains_the_query_tower_and_the_run_searches_with_it(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_readers.plugin, retbench_dense.plugin)
    fixed = evaluate(realm_config(retbench_tiny_bert, query_encoder="fixed"), pm=pm, cache=retbench_cache)
    trained = evaluate(realm_config(retbench_tiny_bert), pm=pm, cache=retbench_cache)
    report = trained.training["fit-reader"]
    assert report["query_encoder_trained"] and not fixed.training["fit-reader"]["query_encoder_trained"]
    assert report["retriever_signal_questions"] >= 2 and report["reader_signal_questions"] >= 2
    # the retriever is not trained on its own (--fit-only reader): one index serves both runs,
    # and the co-trained run's search has its own key
    assert "fit" not in trained.stages and "fit" not in fixed.stages
    assert trained.stages["search"]["key"] != fixed.stages["search"]["key"]
    assert trained.stages["fit-reader"]["key"] != fixed.stages["fit-reader"]["key"]
    again = evaluate(realm_config(retbench_tiny_bert), pm=pm, cache=retbench_cache)
    assert again.cached and again.metrics == trained.metrics


def test_query_encoder_train_needs_a_retriever_that_offers_one(retbench_tiny_bert):
    with pytest.raises(ConfigError, match="query_encoder=train needs a dense retriever"):
        RealmReader(model=str(retbench_tiny_bert), query_encoder="train").trains_query_encoder(object())
    with pytest.raises(ConfigError, match="query_encoder must be one of"):
        RealmReader(query_encoder="both")
    assert not RealmReader(query_encoder="fixed").trains_query_encoder(DPR())
    assert RealmReader().trains_query_encoder(DPR())
