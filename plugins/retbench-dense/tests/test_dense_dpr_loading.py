"""DPR-layout checkpoints load into their own classes (audit F1): a DPRContextEncoder saved to
disk comes back with every weight, and our vectors equal transformers' own outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from retbench import ConfigError
from retbench_dense.encoder import BiEncoder, load_tower
from retbench_dense.settings import EncoderSettings

TEXTS = ["capital of france", "the nile is a long river in africa", "paris"]


def tiny_dpr(folder, cls_name: str, seed: int):
    import transformers
    from retbench.testing.tiny_models import _tokenizer

    tokenizer = _tokenizer(folder)
    torch.manual_seed(seed)
    config = transformers.DPRConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = getattr(transformers, cls_name)(config).eval()
    model.save_pretrained(folder)
    return folder, model, tokenizer


@pytest.fixture(scope="module")
def dpr_towers(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-dpr")
    return (tiny_dpr(root / "question", "DPRQuestionEncoder", seed=1),
            tiny_dpr(root / "context", "DPRContextEncoder", seed=2))


@pytest.mark.parametrize("side", [0, 1])
def test_dpr_towers_round_trip_every_weight(dpr_towers, side):
    folder, saved, _ = dpr_towers[side]
    loaded, _ = load_tower(str(folder), revision=None, dtype="float32", bidirectional=False)
    assert type(loaded) is type(saved)
    expected, got = saved.state_dict(), loaded.state_dict()
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


def test_dpr_bi_encoder_vectors_equal_transformers_outputs(dpr_towers):
    (q_folder, q_ref, tok), (p_folder, p_ref, _) = dpr_towers
    q_model, q_tok = load_tower(str(q_folder), revision=None, dtype="float32", bidirectional=False)
    p_model, p_tok = load_tower(str(p_folder), revision=None, dtype="float32", bidirectional=False)
    encoder = BiEncoder(q_model, q_tok, p_model, p_tok, settings=EncoderSettings(pooling="cls"))
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        q_expected = q_ref(**batch).pooler_output.numpy()
        p_expected = p_ref(**batch).pooler_output.numpy()
    np.testing.assert_allclose(encoder.encode(TEXTS, side="query", batch_size=3), q_expected, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(TEXTS, side="passage", batch_size=3), p_expected, atol=1e-5)
    assert not np.allclose(q_expected, p_expected)  # two towers, two sets of weights


def test_weights_that_would_be_random_are_a_loud_error(dpr_towers, tmp_path):
    folder, _, _ = dpr_towers[1]
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    config = json.loads((broken / "config.json").read_text())
    config["architectures"] = ["BertModel"]  # a DPR checkpoint read as a plain BERT ...
    config["model_type"] = "bert"  # ... has none of BERT's weight names
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="randomly initialised"):
        load_tower(str(broken), revision=None, dtype="float32", bidirectional=False)


def test_dpr_checkpoint_without_a_tower_class_is_an_error(dpr_towers, tmp_path):
    import shutil

    folder, _, _ = dpr_towers[1]
    shutil.copytree(folder, tmp_path / "reader")
    config = json.loads((tmp_path / "reader" / "config.json").read_text())
    config["architectures"] = ["DPRReader"]
    (tmp_path / "reader" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="architectures"):
        load_tower(str(tmp_path / "reader"), revision=None, dtype="float32", bidirectional=False)
