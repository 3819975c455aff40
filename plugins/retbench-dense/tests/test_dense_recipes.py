"""The method recipes' training pieces: ANCE's triplet loss, DRAMA's Matryoshka loss, answer
filtering of hard negatives, init= warm starts and the backbone size in the fingerprint."""

from __future__ import annotations

import math

import pytest
import torch

from retbench import ConfigError
from retbench.testing import mock_split
from retbench_dense.negatives import AnnNegatives, Bm25Hard, InBatch, _ranked_negatives
from retbench_dense.retriever import DPR, DRAMA
from retbench_dense.training import TrainingSettings, training_items, triplet

ITEMS = training_items(mock_split("train"))


def tiny(cls, folder, **params):
    defaults = {"model": str(folder), "pooling": "mean", "train_batch_size": 2, "learning_rate": 1e-3,
                "warmup_ratio": 0.0, "epochs": 2}
    return cls(**{**defaults, **params})


def test_triplet_is_a_two_way_softmax_over_own_positive_and_negative():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 5.0], [1.0, 1.0]])  # positives, then negatives
    loss = triplet(q, p, [2, 3], temperature=1.0)
    expected = (math.log(1 + math.exp(0 - 2)) + math.log(1 + math.exp(1 - 1))) / 2
    assert loss.item() == pytest.approx(expected)
    assert triplet(q, p, [None, 3], 1.0).item() == pytest.approx(math.log(2))  # q1 has no negative
    with pytest.raises(ConfigError, match="triplet"):
        triplet(q, p, [None, None], 1.0)


def test_training_settings_reject_unknown_losses_and_bad_dims():
    with pytest.raises(ConfigError, match="loss must be one of"):
        TrainingSettings(loss="margin")
    with pytest.raises(ConfigError, match="matryoshka_dims"):
        TrainingSettings(matryoshka_dims=(0,))


def test_matryoshka_loss_sums_the_loss_over_the_dimension_prefixes(retbench_tiny_bert, monkeypatch):
    import retbench_dense.training as training

    seen = []
    original = training.info_nce

    def spy(q, p, mask, temperature):
        seen.append((q.shape[1], round(float(q.detach().norm(dim=1).mean()), 4)))
        return original(q, p, mask, temperature)

    monkeypatch.setattr(training, "info_nce", spy)
    retriever = tiny(DPR, retbench_tiny_bert, normalize=True, matryoshka_dims=[8, 16, 64], max_steps=1)
    report = retriever.fit(mock_split("train"), negatives=InBatch(), workdir=retriever_dir(), seed=0)
    assert [d for d, _ in seen] == [32, 16, 8]  # full width first; 64 is wider than the model
    assert all(norm == 1.0 for _, norm in seen)  # each prefix normalised, as searched
    assert report["settings"]["matryoshka_dims"] == [8, 16, 64]


def retriever_dir():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp())


def test_ance_trains_with_the_triplet_loss(retbench_tiny_bert, tmp_path):
    from retbench_dense.retriever import ANCE

    retriever = tiny(ANCE, retbench_tiny_bert)
    assert retriever.training_["loss"] == "triplet"
    report = retriever.fit(mock_split("train"), negatives=AnnNegatives(refresh_every=2, depth=6), workdir=tmp_path,
                           seed=0)
    assert report["settings"]["loss"] == "triplet" and report["steps"] == 4
    assert all(l < math.log(2) + 1.0 for l in report["loss_curve"])  # a 2-way softmax, not over the batch


def test_negatives_containing_an_answer_are_dropped():
    corpus = mock_split().corpus
    run = {"q2": {"d2": 3.0, "d1": 2.0, "d3": 1.0}}
    item = [{"qid": "q2", "positives": ["d2"], "answers": ["Berlin", "Paris"]}]
    assert _ranked_negatives(run, item, corpus=corpus, answer_filter=False) == {"q2": ["d1", "d3"]}
    assert _ranked_negatives(run, item, corpus=corpus, answer_filter=True) == {"q2": ["d3"]}
    assert _ranked_negatives(run, item, corpus=corpus, answer_filter=True, keep=1) == {"q2": []}
    no_answers = [{"qid": "q2", "positives": ["d2"], "answers": []}]
    assert _ranked_negatives(run, no_answers, corpus=corpus, answer_filter=True) == {"q2": ["d1", "d3"]}


def test_bm25_negatives_are_drawn_at_random_from_the_top_depth(tmp_path):
    split = mock_split("train")
    sampler = Bm25Hard(depth=3)
    sampler.prepare(ITEMS, corpus=split.corpus, retriever=None, hard_negatives={}, workdir=tmp_path)
    assert all(len(pool) <= 3 for pool in sampler.candidates_.values())
    draws = {tuple(sampler.sample(ITEMS[1:2], corpus=split.corpus, retriever=None, k=1, seed=s)[0]) for s in range(20)}
    assert len(draws) == 2  # both passages of q2's pool come up


def test_init_warm_starts_from_a_trained_bi_encoder(retbench_tiny_bert, tmp_path):
    import numpy as np

    first = tiny(DPR, retbench_tiny_bert, normalize=True)
    first.fit(mock_split("train"), negatives=InBatch(), workdir=tmp_path / "fit", seed=0)
    texts = ["capital of france", "the nile"]
    trained = first.encoder().encode(texts, side="passage", batch_size=2)
    warm = DPR(model=str(retbench_tiny_bert), init=str(tmp_path / "fit"))
    assert warm.settings_.pooling == "mean" and warm.settings_.normalize  # the settings it was trained with
    np.testing.assert_allclose(warm.encoder().encode(texts, side="passage", batch_size=2), trained, atol=1e-6)
    assert warm.fingerprint()["init"]["revision"].startswith("sha256:")
    with pytest.raises(ConfigError, match="not a trained bi-encoder"):
        _ = DPR(init=str(tmp_path)).init_
    import json

    record = tmp_path / "record.json"
    record.write_text(json.dumps({"training": {"fit": {"model": str(tmp_path / "fit")}}}))
    assert DPR(init=str(record)).init_ == (tmp_path / "fit" / "model").resolve()
    record.write_text(json.dumps({"training": {}}))
    with pytest.raises(ConfigError, match="training.fit.model"):
        _ = DPR(init=str(record)).init_


def test_init_names_a_cached_fit_by_run_id(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path))
    model = tmp_path / "fit" / "abc" / "work" / "model"
    model.mkdir(parents=True)
    (model / "settings.json").write_text("{}")
    run = tmp_path / "runs" / ("9b7f9329de" + "0" * 54)
    run.mkdir(parents=True)
    (run / "record.json").write_text(json.dumps({"training": {"fit": {"model": str(model.parent)}}}))
    assert DPR(init="9b7f9329de").init_ == model.resolve()
    with pytest.raises(ConfigError, match="init run id 'deadbeef00': no run in"):
        _ = DPR(init="deadbeef00").init_


def test_fingerprint_carries_the_backbone_size(retbench_tiny_bert, retbench_tiny_llama):
    from transformers import AutoModel

    expected = sum(p.numel() for p in AutoModel.from_pretrained(str(retbench_tiny_bert)).parameters())
    assert DPR(model=str(retbench_tiny_bert)).fingerprint()["backbone"] == {"parameters": expected, "embedding_dim": 32}
    drama = DRAMA(model=str(retbench_tiny_llama)).fingerprint()
    assert DRAMA(model=str(retbench_tiny_llama), dim=8).fingerprint() == drama, "dim is a search-time parameter"
