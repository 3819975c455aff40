from __future__ import annotations

import pytest
import torch

from retbench import ConfigError
from retbench_readers.hf_generator import HFGenerator, cut_at_stop


def generator(retbench_tiny_llama, **params) -> HFGenerator:
    return HFGenerator(model=str(retbench_tiny_llama), **params)


def test_batched_generation_equals_one_at_a_time(retbench_tiny_llama):
    prompts = ["paris is the capital of", "the nile", "what is the highest mountain on earth and where is it"]
    gen = generator(retbench_tiny_llama, batch_size=3, max_new_tokens=6)
    together = gen.generate(prompts)
    alone = [generator(retbench_tiny_llama, batch_size=1, max_new_tokens=6).generate([p])[0] for p in prompts]
    assert together == alone
    assert all(0 < u["tokens_out"] <= 6 for u in gen.last_usage_)
    assert gen.usage_["calls"] == 3 and gen.usage_["tokens_in"] == sum(u["tokens_in"] for u in gen.last_usage_)


def test_greedy_generation_is_the_models_argmax(retbench_tiny_llama):
    gen = generator(retbench_tiny_llama, max_new_tokens=1)
    model, tokenizer = gen.load()
    ids = tokenizer("paris is the capital of", return_tensors="pt")
    with torch.no_grad():
        expected = tokenizer.decode([int(model(**ids).logits[0, -1].argmax())], skip_special_tokens=True)
    assert gen.generate(["paris is the capital of"])[0] == expected


def test_a_prefix_starts_the_answer_and_only_the_rest_is_returned(retbench_tiny_llama):
    gen = generator(retbench_tiny_llama, max_new_tokens=4, chat_template=False)
    assert gen.generate(["paris is"], prefix=" the capital")[0] == gen.generate(["paris is the capital"])[0]


def test_stop_strings_cut_the_output():
    assert cut_at_stop("Paris.\nQuestion: next", ["\n", "Question:"]) == "Paris."
    assert cut_at_stop("Paris", ["\n"]) == "Paris"


def test_loglikelihood_is_the_sum_of_token_logprobs(retbench_tiny_llama):
    gen = generator(retbench_tiny_llama)
    model, tokenizer = gen.load()
    context, continuation = "paris is the", " capital"
    ids = tokenizer(context + continuation, add_special_tokens=False, return_tensors="pt")["input_ids"]
    n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logprobs = model(ids).logits[0].log_softmax(-1)
    expected = sum(float(logprobs[i - 1, ids[0, i]]) for i in range(n_context, ids.shape[1]))
    assert gen.loglikelihood([context], [continuation])[0] == pytest.approx(expected, abs=1e-4)
    a, b = gen.loglikelihood([context, context], [" capital", " capital of france"])
    assert b < a  # more tokens, more (negative) log-probability


def test_sampling_follows_the_seed(retbench_tiny_llama):
    first = generator(retbench_tiny_llama, temperature=1.0, seed=3, max_new_tokens=8).generate(["the nile"])
    assert first == generator(retbench_tiny_llama, temperature=1.0, seed=3, max_new_tokens=8).generate(["the nile"])


def test_a_call_can_override_the_generators_sampling(retbench_tiny_llama):
    greedy = generator(retbench_tiny_llama, max_new_tokens=8).generate(["the nile"])
    sampler = generator(retbench_tiny_llama, temperature=1.0, seed=3, max_new_tokens=8)
    assert sampler.generate(["the nile"], temperature=0.0) == greedy
    assert generator(retbench_tiny_llama, seed=3, max_new_tokens=8).generate(
        ["the nile"], temperature=1.0, top_p=0.9) == sampler.generate(["the nile"], top_p=0.9)


def test_bad_dtype_is_a_clear_error(retbench_tiny_llama):
    with pytest.raises(ConfigError, match="dtype must be one of"):
        generator(retbench_tiny_llama, dtype="int4").load()
