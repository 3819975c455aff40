from __future__ import annotations

import numpy as np
import pytest
import torch

from retbench import ConfigError
from retbench_dense.encoder import BiEncoder, load_tower, make_bidirectional
from retbench_dense.settings import EncoderSettings

TEXTS = ["capital of france", "the nile is a long river in africa and it flows through many countries", "paris"]


def encoder(folder, **settings) -> BiEncoder:
    model, tokenizer = load_tower(str(folder), revision=None, dtype="float32", bidirectional=False)
    return BiEncoder(model, tokenizer, settings=EncoderSettings(**settings))


@pytest.mark.parametrize("pooling", ["cls", "mean", "last-token"])
def test_padding_does_not_change_a_vector(retbench_tiny_bert, pooling):
    enc = encoder(retbench_tiny_bert, pooling=pooling)
    together = enc.encode(TEXTS, side="query", batch_size=3)
    alone = np.stack([enc.encode([t], side="query", batch_size=1)[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_pooling_modes_differ_and_follow_their_definition(retbench_tiny_bert):
    enc = encoder(retbench_tiny_bert, pooling="mean")
    batch = enc.query_tokenizer(["capital of france"], return_tensors="pt")
    with torch.no_grad():
        hidden = enc.query_model(**batch).last_hidden_state[0]
    np.testing.assert_allclose(enc.encode(["capital of france"], side="query", batch_size=1)[0],
                               hidden.mean(0).numpy(), atol=1e-5)
    cls = encoder(retbench_tiny_bert, pooling="cls").encode(["capital of france"], side="query", batch_size=1)[0]
    np.testing.assert_allclose(cls, hidden[0].numpy(), atol=1e-5)
    last = encoder(retbench_tiny_bert, pooling="last-token").encode(["capital of france"], side="query", batch_size=1)[0]
    np.testing.assert_allclose(last, hidden[-1].numpy(), atol=1e-5)


def test_normalisation_prefix_and_matryoshka(retbench_tiny_bert):
    from retbench_dense.faiss_index import prefix

    plain = encoder(retbench_tiny_bert, pooling="mean").encode(TEXTS, side="query", batch_size=2)
    normed = encoder(retbench_tiny_bert, pooling="mean", normalize=True).encode(TEXTS, side="query", batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)
    cut = prefix(normed, 8, normalize=True)
    assert cut.shape == (3, 8)
    np.testing.assert_allclose(cut, plain[:, :8] / np.linalg.norm(plain[:, :8], axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_array_equal(prefix(plain, 8, normalize=False), plain[:, :8])
    assert prefix(plain, None, normalize=True) is plain
    prefixed = encoder(retbench_tiny_bert, pooling="mean", query_prefix="query: ")
    assert not np.allclose(prefixed.encode(TEXTS, side="query", batch_size=2), plain)
    np.testing.assert_allclose(prefixed.encode(TEXTS, side="passage", batch_size=2), plain, atol=1e-5)


def test_settings_saved_by_an_older_version_still_load():
    from retbench_dense.settings import settings_from_json

    assert settings_from_json({"pooling": "mean", "dim": 256}) == EncoderSettings(pooling="mean")


def test_max_length_truncates(retbench_tiny_bert):
    enc = encoder(retbench_tiny_bert, pooling="mean", passage_max_length=4)
    long = enc.encode([TEXTS[1]], side="passage", batch_size=1)
    cut = enc.encode(["the nile"], side="passage", batch_size=1)  # [CLS] the nile [SEP]
    np.testing.assert_allclose(long, cut, atol=1e-6)
    untruncated = encoder(retbench_tiny_bert, pooling="mean").encode([TEXTS[1]], side="passage", batch_size=1)
    assert not np.allclose(long, untruncated)


def test_bidirectional_attention_sees_later_tokens(retbench_tiny_llama):
    model, tokenizer = load_tower(str(retbench_tiny_llama), revision=None, dtype="float32", bidirectional=False)
    first = tokenizer(["paris is the capital"], return_tensors="pt")
    second = tokenizer(["paris is the river"], return_tensors="pt")
    with torch.no_grad():
        causal = [model(**b).last_hidden_state[0, 1] for b in (first, second)]
        make_bidirectional(model)
        full = [model(**b).last_hidden_state[0, 1] for b in (first, second)]
    assert torch.allclose(causal[0], causal[1], atol=1e-6)  # position 1 cannot see the last word
    assert not torch.allclose(full[0], full[1], atol=1e-4)


def test_unknown_pooling_and_dtype_are_clear_errors(retbench_tiny_bert):
    with pytest.raises(ConfigError, match="pooling must be one of"):
        EncoderSettings(pooling="max")
    with pytest.raises(ConfigError, match="dtype must be one of"):
        load_tower(str(retbench_tiny_bert), revision=None, dtype="int8", bidirectional=False)


def test_separate_towers_save_and_load(retbench_tiny_bert, tmp_path):
    q_model, q_tok = load_tower(str(retbench_tiny_bert), revision=None, dtype="float32", bidirectional=False)
    p_model, p_tok = load_tower(str(retbench_tiny_bert), revision=None, dtype="float32", bidirectional=False)
    with torch.no_grad():
        for parameter in p_model.parameters():
            parameter.add_(0.01)
    enc = BiEncoder(q_model, q_tok, p_model, p_tok, settings=EncoderSettings(pooling="mean"))
    assert not np.allclose(enc.encode(TEXTS, side="query", batch_size=3), enc.encode(TEXTS, side="passage", batch_size=3))
    enc.save(tmp_path / "saved")
    again = BiEncoder.load(tmp_path / "saved", dtype="float32", device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS, side="passage", batch_size=3),
                               enc.encode(TEXTS, side="passage", batch_size=3), atol=1e-6)
