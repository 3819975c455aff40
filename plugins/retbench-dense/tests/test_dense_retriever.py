from __future__ import annotations

import json

import numpy as np
import pytest

from retbench import ConfigError, RunConfig, evaluate
from retbench.testing import check_retriever, make_plugin_manager, mock_split
import retbench_dense.plugin
from retbench_dense.retriever import ANCE, DPR, DRAMA, sentence_transformers_config


def test_contract(retbench_tiny_bert):
    check_retriever(DPR, {"model": str(retbench_tiny_bert), "pooling": "mean"})


def test_offline_defaults_name_the_packaged_models(monkeypatch):
    monkeypatch.setattr("retbench_dense.retriever.resolve_model", lambda spec: type("R", (), {
        "spec": spec, "path": "/nonexistent", "revision": "r", "identity": lambda self: {"spec": spec}})())
    assert DPR().models_[0].spec == "offline:all-minilm-l6-v2"
    assert DPR().models_[1].spec == "offline:all-minilm-l6-v2"  # DPR trains two towers from one start
    assert DRAMA().models_[1] is None  # DRAMA: one shared model
    assert DPR(passage_model=None).models_[1] is None
    assert ANCE().models_[0].spec == "offline:all-minilm-l6-v2"
    assert DRAMA().models_[0].spec == "offline:smollm2-135m-instruct"
    assert DRAMA().settings_.query_prefix == "Query: " and DRAMA().settings_.bidirectional
    assert DPR().settings_.pooling == "cls" and DPR().temperature_ == 1.0
    assert ANCE.default_negatives == "ann" and DPR.default_negatives == "bm25-hard"


def test_method_presets_are_the_reference_recipes_and_each_is_overridable():
    dpr, ance, drama = DPR().training_, ANCE().training_, DRAMA().training_
    assert (dpr["train_batch_size"], dpr["epochs"], dpr["learning_rate"], dpr["weight_decay"],
            dpr["max_grad_norm"], dpr["loss"]) == (128, 40, 2e-5, 0.0, 2.0, "info-nce")
    assert (ance["learning_rate"], ance["loss"]) == (1e-5, "triplet")
    assert drama["matryoshka_dims"] == (256,) and drama["learning_rate"] == 3e-5
    custom = DPR(train_batch_size=16, epochs=1, loss="triplet", matryoshka_dims=[8]).training_
    assert (custom["train_batch_size"], custom["epochs"], custom["loss"], custom["matryoshka_dims"]) == (16, 1, "triplet", (8,))


def test_sentence_transformers_config_sets_auto_pooling(retbench_tiny_bert, tmp_path):
    folder = tmp_path / "st"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    assert sentence_transformers_config(str(folder)) == {"normalize": True, "pooling": "mean"}
    assert sentence_transformers_config(str(retbench_tiny_bert)) == {}


def test_fingerprint_follows_the_weights(retbench_tiny_bert, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(retbench_tiny_bert, copy)
    before = DPR(model=str(copy)).fingerprint()
    assert before == DPR(model=str(copy)).fingerprint()
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    assert DPR(model=str(copy)).fingerprint() != before


def test_missing_model_folder_and_hub_id_offline_are_clear_errors():
    with pytest.raises(ConfigError, match="no such folder"):
        _ = DPR(model="./nowhere/model").models_
    with pytest.raises(ConfigError, match="no network"):
        _ = DPR(model="facebook/dpr-question_encoder-single-nq-base").models_


def test_run_through_the_pipeline_records_the_resolved_model(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_dense.plugin)
    config = RunConfig(dataset="mock", retriever="dpr", retriever_args={"model": str(retbench_tiny_bert), "pooling": "mean"})
    record = evaluate(config, pm=pm, cache=retbench_cache)
    fingerprint = record.components["retriever"]["fingerprint"]
    assert fingerprint["query_model"]["revision"].startswith("sha256:")
    assert 0 <= record.metrics["nDCG@10"] <= 1
    again = evaluate(config, pm=pm, cache=retbench_cache)
    assert again.cached and again.metrics == record.metrics


@pytest.mark.parametrize("factory", ["HNSW8", "IVF2,Flat"])
def test_approximate_indexes_agree_with_exact_search_on_a_small_corpus(retbench_tiny_bert, tmp_path, factory):
    split = mock_split()
    exact = DPR(model=str(retbench_tiny_bert), pooling="mean")
    exact.index(split.corpus, workdir=tmp_path / "exact")
    approx = DPR(model=str(retbench_tiny_bert), pooling="mean", index_factory=factory, search_params="nprobe=2" if "IVF" in factory else "")
    approx.index(split.corpus, workdir=tmp_path / factory)
    a, b = exact.search(split.queries, k=3), approx.search(split.queries, k=3)
    assert {q: list(r)[:1] for q, r in a.items()} == {q: list(r)[:1] for q, r in b.items()}


def test_bad_index_factory_is_a_clear_error(retbench_tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="faiss index 'Nope'"):
        DPR(model=str(retbench_tiny_bert), index_factory="Nope").index(mock_split().corpus, workdir=tmp_path)


def test_killed_encoding_resumes_at_the_first_missing_shard(retbench_tiny_bert, tmp_path):
    split = mock_split()
    retriever = DPR(model=str(retbench_tiny_bert), pooling="mean", shard_size=2)
    calls = []
    original = retriever.encode_passages

    def failing(passages):
        calls.append([p.id for p in passages])
        if calls == [["d1", "d2"], ["d3", "d4"]]:
            raise RuntimeError("killed")
        return original(passages)

    retriever.encode_passages = failing
    with pytest.raises(RuntimeError, match="killed"):
        retriever.index(split.corpus, workdir=tmp_path)
    calls.clear()
    retriever.index(split.corpus, workdir=tmp_path)
    assert calls == [["d3", "d4"], ["d5", "d6"]]  # shard 0 (d1, d2) was kept
    fresh = DPR(model=str(retbench_tiny_bert), pooling="mean")
    fresh.index(split.corpus, workdir=tmp_path / "fresh")
    ranked = {q: list(r) for q, r in retriever.search(split.queries, k=6).items()}
    assert ranked == {q: list(r) for q, r in fresh.search(split.queries, k=6).items()}


def test_float16_storage_and_matryoshka_dim(retbench_tiny_bert, tmp_path):
    split = mock_split()
    retriever = DPR(model=str(retbench_tiny_bert), pooling="mean", embedding_dtype="float16", dim=16, normalize=True)
    retriever.index(split.corpus, workdir=tmp_path)
    stored = np.load(tmp_path / "embeddings" / "shard-000000.npy")
    assert stored.dtype == np.float16 and stored.shape == (len(split.corpus), 32), "the full width is stored"
    found = retriever.search(split.queries, k=2)["q1"]
    queries = retriever.encoder().encode([split.queries["q1"]], side="query", batch_size=1)[:, :16]
    passages = stored.astype(np.float32)[:, :16]
    scores = (passages / np.linalg.norm(passages, axis=1, keepdims=True)) @ (queries / np.linalg.norm(queries)).T
    best = [split.corpus.ids[i] for i in np.argsort(-scores[:, 0])[:2]]
    assert list(found) == best, "searched over the re-normalised 16-dim prefixes"
    reloaded = DPR(model=str(retbench_tiny_bert), pooling="mean", embedding_dtype="float16", dim=16, normalize=True)
    reloaded.load_index(workdir=tmp_path)
    assert reloaded.search(split.queries, k=2)["q1"] == found


def test_dim_is_searched_over_one_cached_index(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_dense.plugin)

    def record(dim):
        args = {"model": str(retbench_tiny_bert), "pooling": "mean", "normalize": True, "dim": dim}
        return evaluate(RunConfig(dataset="mock", retriever="dpr", retriever_args=args), pm=pm, cache=retbench_cache)

    full, cut = record(None), record(8)
    assert "index" not in full.cost["cached_stages"]
    assert "index" in cut.cost["cached_stages"] and "search" not in cut.cost["cached_stages"]
    assert cut.stages["search"] != full.stages["search"]
    assert cut.components["retriever"]["params"]["dim"] == 8


@pytest.mark.slow
def test_several_devices_share_the_shards(retbench_tiny_bert, tmp_path):
    split = mock_split()
    one = DPR(model=str(retbench_tiny_bert), pooling="mean", shard_size=2)
    one.index(split.corpus, workdir=tmp_path / "one")
    two = DPR(model=str(retbench_tiny_bert), pooling="mean", shard_size=2, devices=["cpu", "cpu"])
    two.index(split.corpus, workdir=tmp_path / "two")
    reports = two.encode_workers_  # one Ray actor per device, shards round-robin
    assert [r["shards"] for r in reports] == [2, 1] and sum(r["rows"] for r in reports) == len(split.corpus)
    assert all(r["peak_rss_mb"] > 0 for r in reports)
    for shard in range(3):
        np.testing.assert_allclose(np.load(tmp_path / "two" / "embeddings" / f"shard-{shard:06d}.npy"),
                                   np.load(tmp_path / "one" / "embeddings" / f"shard-{shard:06d}.npy"), atol=1e-5)


def test_drama_trains_and_evaluates_on_a_tiny_llama(retbench_tiny_llama, retbench_cache):
    pm = make_plugin_manager(retbench_dense.plugin)
    args = {"model": str(retbench_tiny_llama), "epochs": 2, "train_batch_size": 2, "learning_rate": 1e-3}
    config = RunConfig(dataset="mock", retriever="drama", fit_split="train", negatives="in-batch", retriever_args=args)
    record = evaluate(config, pm=pm, cache=retbench_cache)
    settings = record.components["retriever"]["fingerprint"]["settings"]
    assert settings["bidirectional"] and settings["pooling"] == "mean" and settings["query_prefix"] == "Query: "
    assert record.training["fit"]["steps"] == 4
    assert 0 <= record.metrics["nDCG@10"] <= 1
