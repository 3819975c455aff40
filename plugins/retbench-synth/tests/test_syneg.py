from __future__ import annotations

import json
import time

import pytest

from retbench import Passage
from retbench.testing import mock_split
from retbench_dense.retriever import DPR
from retbench_dense.training import training_items
from retbench_synth.json_output import parse_json_object
from retbench_synth.syneg import SynegNegatives

SPLIT = mock_split("train")
ITEMS = training_items(SPLIT)


class Writer:
    """Scripted generator: a JSON negative per query (malformed for q2), a reflection verdict;
    with a prefix it returns what follows the prefix, as real generators do."""

    name = "writer"

    def __init__(self, answers_query: bool = False, delay: float = 0.0):
        self.delay = delay
        self.prompts: list[str] = []
        self.prefixes: list[str] = []
        self.answers_query = answers_query

    def answer(self, prompt: str) -> str:
        if prompt.startswith("Query:"):  # the self-reflection step
            return json.dumps({"answers_query": self.answers_query, "revised": "a revised negative"}) + " and more"
        if "Query: " + SPLIT.queries["q2"] in prompt:
            return '{"negative": "unterminated'
        return 'Sure! {"negative": "a passage about something else"}'

    def generate(self, prompts, *, max_new_tokens, prefix=""):
        time.sleep(self.delay)
        self.prompts += prompts
        self.prefixes.append(prefix)
        answers = [self.answer(p) for p in prompts]
        answers = [a[a.index("{"):] if prefix else a for a in answers]
        return [a[len(prefix):] if a.startswith(prefix) else a for a in answers]


def sampler(generator, tmp_path, **params) -> SynegNegatives:
    syneg = SynegNegatives(retrieved="random", **params)
    syneg.set_augment_generator(generator)
    syneg.prepare(ITEMS, corpus=SPLIT.corpus, retriever=None, hard_negatives={}, workdir=tmp_path)
    return syneg


def test_malformed_json_is_retried_then_the_pair_skipped(tmp_path):
    generator = Writer()
    syneg = sampler(generator, tmp_path, retries=2)
    malformed = [p for p in generator.prompts if "Query: " + SPLIT.queries["q2"] in p and not p.startswith("Query:")]
    assert len(malformed) == 3 and malformed[1].endswith("nothing else.")
    counts = syneg.log[0]["synthetic_negatives"]
    assert counts["malformed"] == 1 and counts["kept"] == len(ITEMS) - 1
    assert "q2" not in syneg.synthetic_ and syneg.synthetic_["q1"].text == "a passage about something else"


def test_answers_are_prefilled_with_the_json_opening_unless_prefill_is_off(tmp_path):
    prefilled = Writer()
    assert sampler(prefilled, tmp_path / "on").synthetic_["q1"].text == "a passage about something else"
    assert set(prefilled.prefixes) == {'{"negative": "', '{"answers_query": '}
    plain = Writer()
    assert sampler(plain, tmp_path / "off", prefill=False).synthetic_["q1"].text == "a passage about something else"
    assert set(plain.prefixes) == {""}


def test_json_is_found_in_prose_and_text_after_it_is_ignored():
    assert parse_json_object('Sure! {"a": {"b": 1}} and then {"c": 2}') == {"a": {"b": 1}}
    assert parse_json_object('{"a": "unterminated} {"b": 2}') == {"b": 2}
    assert parse_json_object("no object [1, 2]") is None


def test_reflection_replaces_a_negative_that_answers_the_query(tmp_path):
    syneg = sampler(Writer(answers_query=True), tmp_path)
    assert syneg.synthetic_["q1"].text == "a revised negative"
    assert syneg.log[0]["synthetic_negatives"]["revised"] == len(ITEMS) - 1


def test_negatives_are_cached_per_pair_with_their_generation_seconds(tmp_path):
    first = sampler(Writer(delay=0.05), tmp_path).log[0]
    again = Writer(delay=0.05)
    reused = sampler(again, tmp_path).log[0]
    assert again.prompts == []
    assert reused["generation_seconds"] == first["generation_seconds"] > 0


def test_every_instance_gets_exactly_one_synthetic_negative_plus_retrieved_ones(tmp_path):
    syneg = sampler(Writer(), tmp_path, ratio=0.7)
    batch = [i for i in ITEMS if i["qid"] != "q2"]
    retrieved = []
    for seed in range(200):
        for picks in syneg.sample(batch, corpus=SPLIT.corpus, retriever=None, k=3, seed=seed):
            synthetic = [p for p in picks if isinstance(p, Passage)]
            assert len(synthetic) == 1 and synthetic[0].id.startswith("syneg:")
            retrieved.append(len(picks) - 1)
    assert sum(retrieved) / len(retrieved) == pytest.approx(1 / 0.7 - 1, abs=0.05)
    fallback = syneg.sample([i for i in ITEMS if i["qid"] == "q2"], corpus=SPLIT.corpus, retriever=None, k=2, seed=0)
    assert len(fallback[0]) == 2 and all(isinstance(p, str) for p in fallback[0])


def test_a_retriever_trains_on_synthetic_negatives(retbench_tiny_bert, tmp_path):
    retriever = DPR(model=str(retbench_tiny_bert), pooling="mean", train_batch_size=2, learning_rate=1e-3,
                    warmup_ratio=0.0, epochs=5)
    syneg = SynegNegatives(retrieved="random")
    syneg.set_augment_generator(Writer())
    report = retriever.fit(SPLIT, negatives=syneg, workdir=tmp_path, seed=0)
    assert report["negatives"] == "syneg" and report["steps"] == 10
    assert report["negatives_log"][0]["synthetic_negatives"]["kept"] == len(ITEMS) - 1
    assert report["loss_last_tenth"] < report["loss_first_tenth"]
