from __future__ import annotations

import pytest

import retbench_bm25.plugin
import retbench_dense.plugin
import retbench_synth.plugin
from retbench import ConfigError, RunConfig, evaluate
from retbench.reporting.leaderboard import build_table, system_label
from retbench.testing import make_plugin_manager


def manager():
    return make_plugin_manager(retbench_dense.plugin, retbench_bm25.plugin, retbench_synth.plugin)


def config(tiny, **kwargs) -> RunConfig:
    retriever_args = {"model": str(tiny), "pooling": "mean", "train_batch_size": 2, "epochs": 2,
                      "learning_rate": 1e-3, "warmup_ratio": 0.0}
    return RunConfig(dataset="mock", retriever="dpr", retriever_args=retriever_args, fit_split="train",
                     negatives="random", **kwargs)


def test_crop_data_joins_the_training_split_and_names_the_recipe(retbench_tiny_bert, retbench_cache):
    args = {"passages": 4, "k": 4, "distractors_from": 2, "min_words": 2}
    record = evaluate(config(retbench_tiny_bert, augment="crop", augment_args=args), pm=manager(),
                      cache=retbench_cache)
    augment = record.training["augment"]
    assert augment["recipe"] == "crop" and augment["counts"]["crop"]["kept"] == augment["items"] > 0
    fit = record.training["fit"]
    assert fit["train"]["split"] == "train + crop" and fit["train"]["queries"] == 4 + augment["items"]
    assert "[trained: train + crop, random negatives]" in system_label(record)
    assert "augment s" in build_table([record])
    plain = evaluate(config(retbench_tiny_bert), pm=manager(), cache=retbench_cache)
    assert plain.stages["fit"]["key"] != record.stages["fit"]["key"]
    half = evaluate(config(retbench_tiny_bert, augment="crop", augment_args=args, augment_ratio=0.5), pm=manager(),
                    cache=retbench_cache)
    assert "augment" in half.cost["cached_stages"] and half.training["fit"]["train"]["queries"] == 4 + 2
    assert "train + crop x0.5" in system_label(half)
    assert augment["mix"] == {"real": 4, "synthetic": augment["items"], "augment_ratio": None,
                              "synthetic_per_real": round(augment["items"] / 4, 4)}
    assert half.training["augment"]["mix"]["synthetic"] == 2 and half.training["augment"]["mix"]["augment_ratio"] == 0.5
    assert fit["items_unseen"] == 0  # whole epochs: every real and synthetic item is trained on


def test_a_trained_bi_encoder_labels_the_synthetic_queries(retbench_tiny_bert, retbench_cache):
    trained = evaluate(config(retbench_tiny_bert), pm=manager(), cache=retbench_cache)
    fit = trained.training["fit"]["model"]
    args = {"passages": 4, "k": 4, "distractors_from": 2, "min_words": 2}
    by_bm25 = evaluate(config(retbench_tiny_bert, augment="crop", augment_args=args), pm=manager(),
                       cache=retbench_cache)
    args = {**args, "labeler_args": {"model": str(retbench_tiny_bert)}}
    by_dpr = evaluate(config(retbench_tiny_bert, augment="crop", augment_args={**args, "labeler": f"dpr@{fit}"}),
                      pm=manager(), cache=retbench_cache)
    assert by_dpr.components["augmenter:crop"]["params"]["labeler"] == f"dpr@{fit}"
    assert by_dpr.stages["augment"]["key"] != by_bm25.stages["augment"]["key"]
    assert by_dpr.training["augment"]["items"] == 4
    with pytest.raises(ConfigError, match="not a trained bi-encoder"):
        evaluate(config(retbench_tiny_bert, augment="crop", augment_args={**args, "labeler": "dpr@/nowhere"}),
                 pm=manager(), cache=retbench_cache)


def test_augment_settings_are_checked(retbench_tiny_bert, retbench_cache):
    with pytest.raises(ConfigError, match="give --fit-split"):
        evaluate(RunConfig(dataset="mock", retriever="bm25", augment="crop"), pm=manager(), cache=retbench_cache)
    with pytest.raises(ConfigError, match="no augmenter among"):
        evaluate(config(retbench_tiny_bert, augment="crop", augment_args={"window": 4}), pm=manager(),
                 cache=retbench_cache)
