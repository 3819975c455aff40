"""Tiny random-initialised transformers models for fast tests (a BERT and a Llama).

Both share a small lower-case WordPiece vocabulary built from ``WORDS``; the weights are
random, so tests check behaviour (shapes, training moves the loss, caching), not quality.
transformers is imported when a builder is called.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a an of in on is was to and for with by what which who where when how capital city "
    "country river mountain highest long flows through paris france berlin germany madrid spain "
    "danube vienna budapest everest earth nile africa query passage answer question yes no"
).split()


def _vocabulary() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,?!'-:")
    return SPECIAL + WORDS + letters + ["##" + c for c in letters]


def _tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = {token: index for index, token in enumerate(_vocabulary())}
    tokenizer = BertTokenizerFast(vocab=vocabulary, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_bert(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT with its tokenizer, saved in ``folder``."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = _tokenizer(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return folder


def tiny_llama(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer, 32-wide Llama causal LM with its tokenizer, saved in ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                         eos_token_id=tokenizer.sep_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
