"""Retrieval utility RU = log p(y | z, x) - log p(y | empty, x) through the rag reader's generator."""

from __future__ import annotations

import pytest
import torch

import retbench_readers.plugin
from retbench import ConfigError, RunConfig, evaluate
from retbench.testing import make_plugin_manager
from retbench.testing.mocks import mock_split


def _by_hand(model, tokenizer, context: str, continuation: str) -> float:
    prefix = tokenizer(context, add_special_tokens=False)["input_ids"]
    target = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prefix + target])).logits[0].log_softmax(-1)
    return sum(float(logits[len(prefix) - 1 + i, t]) for i, t in enumerate(target))


def test_retrieval_utility_is_the_hand_computed_log_likelihood_difference(retbench_tiny_llama, retbench_cache):
    pm = make_plugin_manager(retbench_readers.plugin)
    config = RunConfig(dataset="mock", retriever="oracle", reader="rag", generator="hf", metrics=["EM", "RU"],
                       reader_args={"k": 2}, generator_args={"model": str(retbench_tiny_llama),
                                                              "chat_template": False, "max_new_tokens": 2})
    record = evaluate(config, pm=pm, cache=retbench_cache)
    assert {"RU@1", "RU@2", "RU@1-random"} <= set(record.metrics)
    assert {"RU@1-answer", "RU@1-noanswer"} & set(record.metrics)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(retbench_tiny_llama)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(retbench_tiny_llama))
    split = mock_split()
    qid = next(q for q in split.queries if split.answers.get(q) and q in record.per_query)
    gold = split.answers[qid]
    ranked = sorted(split.qrels[qid], key=lambda d: -split.qrels[qid][d])
    top = split.corpus.get(ranked[:1])[0]
    question = split.queries[qid]
    from retbench_readers.prompts import build_prompt

    def total(prompt: str) -> float:
        values = [_by_hand(model, tokenizer, prompt + " The answer is", f" {a.strip().rstrip('.')}.")
                  for a in dict.fromkeys(a.strip() for a in gold)]
        return float(torch.logsumexp(torch.tensor(values), 0))

    expected = total(build_prompt("direct", question, [top])) - total(build_prompt("direct", question, []))
    assert expected != 0.0
    assert record.per_query[qid]["RU@1"] == pytest.approx(expected, abs=1e-4)
    assert record.metrics["RU@1"] == pytest.approx(
        sum(v["RU@1"] for v in record.per_query.values() if "RU@1" in v)
        / sum("RU@1" in v for v in record.per_query.values()))


def test_retrieval_utility_needs_a_reader_that_can_score(retbench_cache):
    pm = make_plugin_manager(retbench_readers.plugin)
    config = RunConfig(dataset="mock", retriever="oracle", reader="echo", metrics=["RU"])
    with pytest.raises(ConfigError, match="cannot score an answer"):
        evaluate(config, pm=pm, cache=retbench_cache)
