from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("RETBENCH_OFFLINE", "1")


@pytest.fixture(scope="session")
def gqa_llama(tmp_path_factory):
    """A 4-layer Llama with grouped-query attention (6 query heads on 2 key/value heads) and
    tied embeddings, with the tiny test tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from retbench.testing.tiny_models import tiny_llama

    folder = tiny_llama(tmp_path_factory.mktemp("gqa-llama"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=6, num_key_value_heads=2, head_dim=8, tie_word_embeddings=True,
                         max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.sep_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture()
def text_file(tmp_path):
    words = "the river nile flows north through egypt to the sea while paris lies on the seine".split()
    lines = [" ".join(words[(i * 3) % len(words):] + words[: (i * 3) % len(words)]) for i in range(60)]
    path = tmp_path / "text.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
