from __future__ import annotations

import json
import time
from typing import ClassVar

import pytest

import retbench_bm25.plugin
import retbench_dense.plugin
import retbench_synth.plugin
from retbench import ConfigError, Passage, RunConfig, component_factory, evaluate, hookimpl
from retbench.testing import make_plugin_manager, mock_split
from retbench_dense.retriever import DPR
from retbench_dense.training import training_items
from retbench_synth.json_output import parse_json_object
from retbench_synth.syneg import ATTRIBUTES, SynegNegatives

SPLIT = mock_split("train")
ITEMS = training_items(SPLIT)
FACTORY = component_factory(make_plugin_manager(retbench_dense.plugin, retbench_bm25.plugin))


def asks_about(prompt: str, qid: str) -> bool:
    return json.dumps(SPLIT.queries[qid]) in prompt


class Writer:
    """Scripted generator: a JSON reasoning + negative per query (malformed for q2), a
    verification verdict; with a prefix it returns what follows the prefix, as real generators do."""

    name = "writer"
    version = "1"
    calls: ClassVar[list[str]] = []  # every prompt any Writer was given (a run builds its own)

    def __init__(self, answers_query: bool = False, delay: float = 0.0):
        self.delay = delay
        self.prompts: list[str] = []
        self.prefixes: list[str] = []
        self.answers_query = answers_query

    def get_params(self):
        return {}  # the scripted verdict is not part of its identity: a verify run reuses the generations

    def answer(self, prompt: str) -> str:
        if prompt.startswith("Query:"):  # the verification step
            return json.dumps({"answers_query": self.answers_query, "revised": "a revised negative"}) + " and more"
        if asks_about(prompt, "q2"):
            return '{"reasoning": "unterminated'
        return 'Sure! {"reasoning": "same topic, no answer", "hard_negative_document": "a passage about something else"}'

    def generate(self, prompts, *, max_new_tokens, prefix=""):
        time.sleep(self.delay)
        self.prompts += prompts
        Writer.calls.extend(prompts)
        self.prefixes.append(prefix)
        answers = [self.answer(p) for p in prompts]
        answers = [a[a.index("{"):] if prefix and "{" in a else a for a in answers]
        return [a[len(prefix):] if a.startswith(prefix) else a for a in answers]


class WriterPlugin:
    @hookimpl
    def retbench_register_generators(self, register):
        register(Writer)


def sampler(generator, tmp_path, **params) -> SynegNegatives:
    syneg = SynegNegatives(**{"retrieved": "random", **params})
    syneg.set_augment_generator(generator)
    syneg.set_component_factory(FACTORY)
    syneg.prepare(ITEMS, corpus=SPLIT.corpus, retriever=None, hard_negatives={}, workdir=tmp_path)
    return syneg


def test_the_prompt_asks_for_reasoning_then_the_negative_under_the_papers_attributes(tmp_path):
    generator = Writer()
    syneg = sampler(generator, tmp_path)
    prompt = next(p for p in generator.prompts if asks_about(p, "q1"))
    scifact = ATTRIBUTES["scifact"]
    assert any(prompt.startswith(f"Assume you are an expert in {d}.") for d in scifact["domains"])
    assert any(f"education level {level}" in prompt for level in scifact["levels"])
    assert any(f"length should be {length} the positive_document" in prompt for length in scifact["lengths"])
    assert prompt.index('"reasoning"') < prompt.index('"hard_negative_document"')
    assert set(generator.prefixes) == {'{"reasoning": "'}  # no separate verification unless asked
    drawn = {tuple(syneg.pair_attributes(f"q{n}").values()) for n in range(40)}
    assert len({d for d, _, _ in drawn}) > 3 and {length for _, _, length in drawn} == set(scifact["lengths"])


def test_without_reasoning_the_answer_is_the_document_alone(tmp_path):
    generator = Writer()
    generator.answer = lambda prompt: '{"hard_negative_document": "just a document"}'
    syneg = sampler(generator, tmp_path, reasoning=False)
    assert syneg.synthetic_["q1"].text == "just a document"
    assert all("[Reasoning Definition]" not in p and '"reasoning"' not in p for p in generator.prompts)
    assert set(generator.prefixes) == {'{"hard_negative_document": "'}


def test_malformed_json_is_retried_then_the_pair_skipped(tmp_path):
    generator = Writer()
    syneg = sampler(generator, tmp_path, retries=2)
    malformed = [p for p in generator.prompts if asks_about(p, "q2")]
    assert len(malformed) == 3 and malformed[1].endswith("nothing else.")
    counts = syneg.log[0]["synthetic_negatives"]
    assert counts["malformed"] == 1 and counts["kept"] == len(ITEMS) - 1
    assert "q2" not in syneg.synthetic_ and syneg.synthetic_["q1"].text == "a passage about something else"


def test_answers_are_prefilled_with_the_json_opening_unless_prefill_is_off(tmp_path):
    prefilled = Writer()
    assert sampler(prefilled, tmp_path / "on", verify=True).synthetic_["q1"].text == "a passage about something else"
    assert set(prefilled.prefixes) == {'{"reasoning": "', '{"answers_query": '}
    plain = Writer()
    assert sampler(plain, tmp_path / "off", prefill=False).synthetic_["q1"].text == "a passage about something else"
    assert set(plain.prefixes) == {""}


def test_json_is_found_in_prose_and_text_after_it_is_ignored():
    assert parse_json_object('Sure! {"a": {"b": 1}} and then {"c": 2}') == {"a": {"b": 1}}
    assert parse_json_object('{"a": "unterminated} {"b": 2}') == {"b": 2}
    assert parse_json_object("no object [1, 2]") is None


def test_verification_is_a_separate_step_that_reuses_the_generations(tmp_path):
    sampler(Writer(), tmp_path)
    again = Writer(answers_query=True)
    syneg = sampler(again, tmp_path, verify=True)
    assert all(p.startswith("Query:") for p in again.prompts) and len(again.prompts) == len(ITEMS) - 1
    assert syneg.synthetic_["q1"].text == "a revised negative"
    assert syneg.log[0]["synthetic_negatives"]["revised"] == len(ITEMS) - 1


class Abstracts(Writer):
    """Scripted generator for ``prompt=abstract``: plain text after the prefix; log p("Yes") is
    high for passages that mention Paris, so the likelihood verifier drops those."""

    def answer(self, prompt: str) -> str:
        return "Background: a study of Paris" if "France" in prompt else "Background: a study of rivers"

    def loglikelihood(self, contexts, continuations):
        return [(-0.1 if "Paris" in c else -3.0) if t == "Yes" else -1.0 for c, t in zip(contexts, continuations)]


def test_the_abstract_prompt_names_the_positives_title_and_prefills_the_answer(tmp_path):
    generator = Abstracts()
    syneg = sampler(generator, tmp_path, prompt="abstract")
    prompt = next(p for p in generator.prompts if '"France"' in p)
    assert "research article titled" in prompt and SPLIT.queries["q1"] not in prompt and "JSON" not in prompt
    assert set(generator.prefixes) == {"Background: "}
    assert syneg.synthetic_["q1"].text == "Background: a study of Paris"
    assert syneg.log[0]["prompt"] == "abstract" and "research article" in syneg.log[0]["prompt_templates"]["negative"]


def test_likelihood_verification_drops_negatives_the_generator_judges_answering(tmp_path):
    sampler(Abstracts(), tmp_path, prompt="abstract")
    again = Abstracts()
    syneg = sampler(again, tmp_path, prompt="abstract", verify="likelihood")
    assert again.prompts == []  # the generations are reused, only the verdicts are new
    assert "q1" not in syneg.synthetic_ and "q2" in syneg.synthetic_
    counts = syneg.log[0]["synthetic_negatives"]
    assert counts["rejected_by_verification"] == 1 and counts["kept"] == len(ITEMS) - 1
    verifier = syneg.log[0]["verifier"]
    assert verifier["judged"] == len(ITEMS) and verifier["negatives_judged_answering"] == round(1 / len(ITEMS), 4)
    lenient = sampler(Abstracts(), tmp_path, prompt="abstract", verify="likelihood", verify_margin=5.0)
    assert "q1" in lenient.synthetic_


def test_unknown_prompt_or_verify_and_a_verifier_without_loglikelihood_fail_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="prompt must be one of paper, abstract"):
        SynegNegatives(prompt="short").validate()
    with pytest.raises(ConfigError, match="verify must be false, true or likelihood"):
        SynegNegatives(verify="maybe").validate()
    with pytest.raises(ConfigError, match="verify=likelihood needs a generator with loglikelihood; 'writer'"):
        sampler(Writer(), tmp_path, verify="likelihood")


def test_negatives_shorter_than_min_words_are_dropped_and_counted_without_regenerating(tmp_path):
    sampler(Writer(), tmp_path)
    again = Writer()
    syneg = sampler(again, tmp_path, min_words=6)  # "a passage about something else" has 5 words
    counts = syneg.log[0]["synthetic_negatives"]
    assert again.prompts == [] and syneg.synthetic_ == {}
    assert counts["too_short"] == len(ITEMS) - 1 and counts["kept"] == 0 and counts["malformed"] == 1
    assert sampler(Writer(), tmp_path, min_words=5).log[0]["synthetic_negatives"]["kept"] == len(ITEMS) - 1
    with pytest.raises(ConfigError, match="min_words"):
        SynegNegatives(min_words=-1).validate()


def test_negatives_are_cached_per_pair_with_their_generation_seconds(tmp_path):
    first = sampler(Writer(delay=0.05), tmp_path).log[0]
    again = Writer(delay=0.05)
    reused = sampler(again, tmp_path).log[0]
    assert again.prompts == []
    assert reused["generation_seconds"] == first["generation_seconds"] > 0


def test_hybrid_gives_every_instance_exactly_one_synthetic_plus_k_minus_one_retrieved(tmp_path):
    syneg = sampler(Writer(), tmp_path)
    batch = [i for i in ITEMS if i["qid"] != "q2"]
    for seed in range(20):
        for picks in syneg.sample(batch, corpus=SPLIT.corpus, retriever=None, k=3, seed=seed):
            assert isinstance(picks[0], Passage) and picks[0].id.startswith("syneg:")
            assert len(picks) == 3 and all(isinstance(p, str) for p in picks[1:])
    fallback = syneg.sample([i for i in ITEMS if i["qid"] == "q2"], corpus=SPLIT.corpus, retriever=None, k=2, seed=0)
    assert len(fallback[0]) == 2 and all(isinstance(p, str) for p in fallback[0])
    mix = syneg.log[1]
    assert mix["per_instance"] == {"0 synthetic + 2 retrieved": 1, "1 synthetic + 2 retrieved": 20 * len(batch)}
    assert mix["synthetic_negatives"] == 20 * len(batch) and mix["retrieved_negatives"] == 40 * len(batch) + 2
    with pytest.raises(ConfigError, match="hard_negatives >= 2"):
        syneg.sample(batch, corpus=SPLIT.corpus, retriever=None, k=1, seed=0)


def test_synthetic_only_and_the_share_of_queries_with_a_synthetic_negative(tmp_path):
    only = sampler(Writer(), tmp_path, mix="synthetic-only")
    picks = only.sample(ITEMS, corpus=SPLIT.corpus, retriever=None, k=1, seed=0)
    assert [len(p) for p in picks] == [0 if i["qid"] == "q2" else 1 for i in ITEMS]
    many = [{"qid": f"x{n}"} for n in range(400)]
    share = SynegNegatives(synthetic_share=0.5)
    assert sum(share.gets_synthetic(i["qid"]) for i in many) == pytest.approx(200, abs=30)
    with pytest.raises(ConfigError, match="mix must be"):
        SynegNegatives(mix="direct").validate()
    with pytest.raises(ConfigError, match="not a preset"):
        SynegNegatives(attributes="nq").validate()


def test_a_retriever_trains_on_the_hybrid_mix_at_the_papers_temperature(retbench_tiny_bert, tmp_path):
    retriever = DPR(model=str(retbench_tiny_bert), pooling="mean", train_batch_size=2, learning_rate=1e-3,
                    warmup_ratio=0.0, epochs=5, hard_negatives=2)
    syneg = SynegNegatives(retrieved="random")
    syneg.set_augment_generator(Writer())
    syneg.set_component_factory(FACTORY)
    report = retriever.fit(SPLIT, negatives=syneg, workdir=tmp_path, seed=0)
    assert report["negatives"] == "syneg" and report["steps"] == 10 and report["items_unseen"] == 0
    assert report["settings"]["temperature"] == 0.017
    assert report["negatives_log"][0]["synthetic_negatives"]["kept"] == len(ITEMS) - 1
    assert report["negatives_log"][1]["per_instance"] == {"0 synthetic + 2 retrieved": 5,
                                                           "1 synthetic + 1 retrieved": 15}
    assert len(report["grad_norm_curve"]) == 10 and report["grad_norm_variance"] >= 0
    with pytest.raises(ConfigError, match="hard_negatives=1"):
        DPR(model=str(retbench_tiny_bert), hard_negatives=1).fit(SPLIT, negatives=syneg, workdir=tmp_path / "k1",
                                                                 seed=0)


def test_a_run_changing_only_training_settings_reuses_the_generated_negatives(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_dense.plugin, retbench_bm25.plugin, retbench_synth.plugin, WriterPlugin())
    retriever_args = {"model": str(retbench_tiny_bert), "pooling": "mean", "train_batch_size": 2, "epochs": 1,
                      "learning_rate": 1e-3, "warmup_ratio": 0.0, "hard_negatives": 2}

    def run(**changes):
        config = RunConfig(dataset="mock", retriever="dpr", retriever_args={**retriever_args, **changes},
                           fit_split="train", negatives="syneg", negatives_args={"retrieved": "random"},
                           generator="writer")
        return evaluate(config, pm=pm, cache=retbench_cache)

    Writer.calls.clear()
    first = run()
    written = len(Writer.calls)
    assert written == len(ITEMS) + 1  # one prompt per pair, one retry for the malformed one
    second = run(epochs=2)
    assert second.stages["fit"]["key"] != first.stages["fit"]["key"] and not second.stages["fit"]["cached"]
    assert len(Writer.calls) == written  # nothing regenerated
    log = second.training["fit"]["negatives_log"]
    assert log[0]["generation_seconds"] == first.training["fit"]["negatives_log"][0]["generation_seconds"]
    assert second.training["fit"]["generation_seconds"] == log[0]["generation_seconds"]  # the declared field
    assert sum(log[1]["per_instance"].values()) == 2 * len(ITEMS)
