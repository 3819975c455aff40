from __future__ import annotations

import re

import pytest

import retbench_bm25.plugin
from retbench import Corpus, Passage, component_factory
from retbench.engine.training_data import training_split
from retbench.testing import make_plugin_manager
from retbench_synth.drama import (
    CropAugmenter,
    QgenAugmenter,
    RerankAugmenter,
    TripletAugmenter,
    clean_query,
    parse_triplet,
    sentences,
)

TOPICS = ["paris france capital seine", "berlin germany capital spree", "madrid spain capital prado",
          "vienna austria capital danube", "nile river africa egypt", "everest mountain highest himalaya"]
PASSAGES = [Passage(f"d{i}", f"The first sentence is about {t}. Short one. A second sentence mentions {t} again.",
                    t.split()[0]) for i, t in enumerate(TOPICS)]
CORPUS = Corpus.from_passages(PASSAGES)
FACTORY = component_factory(make_plugin_manager(retbench_bm25.plugin))


def made(augmenter):
    """``augmenter`` with the factory a run would hand it (its labeller comes from there)."""
    augmenter.set_component_factory(FACTORY)
    return augmenter


class Scripted:
    """A generator answering each prompt kind with a scripted output; counts its prompts."""

    name = "scripted"

    def __init__(self, fail_after: int | None = None):
        self.prompts: list[str] = []
        self.sampling: list[tuple[str, float | None, float | None]] = []  # (prompt kind, temperature, top_p)
        self.fail_after = fail_after

    def get_params(self):
        return {}

    def generate(self, prompts, *, max_new_tokens, temperature=None, top_p=None):
        if self.fail_after is not None and len(self.prompts) >= self.fail_after:
            raise KeyboardInterrupt
        self.prompts += prompts
        self.sampling += [(p.split()[0], temperature, top_p) for p in prompts]
        outputs = []
        for prompt in prompts:
            topic = re.search(r"about (\w+)", prompt)
            if prompt.startswith("Rank"):
                count = len(re.findall(r"^\[\d+\]", prompt, re.MULTILINE))
                outputs.append(" > ".join(f"[{i}]" for i in range(count, 0, -1)))  # reversed
            elif prompt.startswith("Brainstorm"):
                topic = re.search(r"about (\w+)", prompt.rsplit("Passage:", 1)[1])
                outputs.append(f" Find a city\nQuery: {topic.group(1)} capital" if topic else "")
            elif "Reply with JSON" in prompt:
                outputs.append('{"query": "q", "positive": "p", "negative": "n"}' if "paris" in prompt
                               else '{"query": "q", "positive": ')
            else:
                outputs.append("")
        return outputs


def test_a_cropped_query_is_a_sentence_of_its_passage(tmp_path):
    augmenter = made(CropAugmenter(passages=6, k=6, positives=1, distractors_from=3, min_words=4))
    items = augmenter.augment(CORPUS, workdir=tmp_path)
    assert len(items) == 6 and augmenter.last_counts_ == {"kept": 6, "rejected": 0}
    by_id = {p.id: p for p in PASSAGES}
    for item in items:
        source = by_id[item["qid"].removeprefix("crop-")]
        assert item["query"] in sentences(source.text) and len(item["query"].split()) >= 4
        assert len(item["positives"]) == 1 and item["positives"][0] not in item["distractors"]
        assert len(item["distractors"]) <= 3
    assert items == made(CropAugmenter(passages=6, k=6, positives=1, distractors_from=3, min_words=4)).augment(
        CORPUS, workdir=tmp_path)  # seeded


def test_qgen_writes_one_query_per_passage_and_caches_it(tmp_path):
    generator = Scripted()
    items = made(QgenAugmenter(passages=4, k=6)).augment(CORPUS, generator=generator, workdir=tmp_path)
    assert {i["query"] for i in items} <= {f"{t.split()[0]} capital" for t in TOPICS}
    asked = len(generator.prompts)
    assert asked == 4
    made(QgenAugmenter(passages=4, k=6)).augment(CORPUS, generator=generator, workdir=tmp_path)
    assert len(generator.prompts) == asked


def test_an_interrupted_generation_resumes_without_regenerating(tmp_path):
    calls: list[list[str]] = []

    def make_then_die(part):
        if calls:
            raise KeyboardInterrupt
        calls.append([p.id for p in part])
        return [p.id for p in part]

    with pytest.raises(KeyboardInterrupt):
        QgenAugmenter().generated(PASSAGES, tmp_path, make_then_die, chunk=2)
    made: list[str] = []
    QgenAugmenter().generated(PASSAGES, tmp_path, lambda part: made.extend(p.id for p in part) or [p.id for p in part],
                              chunk=2)
    assert calls == [["d0", "d1"]] and made == ["d2", "d3", "d4", "d5"]


def test_rerank_applies_the_parsed_permutation_and_takes_distractors_from_lower_ranks(tmp_path):
    generator = Scripted()
    augmenter = made(RerankAugmenter(passages=2, k=5, distractors_from=2))
    items = augmenter.augment(CORPUS, generator=generator, workdir=tmp_path)
    ranked = made(QgenAugmenter(passages=2, k=5)).retrieved(
        {i["qid"].removeprefix("rerank-"): i["query"] for i in items}, CORPUS, tmp_path)
    for item in items:
        original = ranked[item["qid"].removeprefix("rerank-")]
        reranked = list(reversed(original))  # the scripted ranking reverses the list
        assert item["positives"] == reranked[:1]
        assert item["distractors"] == reranked[2:5]  # not rank 2, the likeliest false negative
    assert augmenter.last_counts_["clean_windows"] == len(items)
    rank_prompts = [p for p in generator.prompts if p.startswith("Rank")]
    assert len(rank_prompts) == len(items)  # window=None: all k candidates in one prompt
    shown = sorted(len(re.findall(r"^\[\d+\]", p, re.MULTILINE)) for p in rank_prompts)
    assert shown == sorted(len(ranked[q]) for q in ranked) and shown[-1] > 4 // 2


def test_qgen_samples_its_queries_as_drama_and_rerank_ranks_greedily(tmp_path):
    generator = Scripted()
    made(RerankAugmenter(passages=2, k=5)).augment(CORPUS, generator=generator, workdir=tmp_path)
    assert set(generator.sampling) == {("Brainstorm", 0.8, 0.9), ("Rank", 0.0, None)}
    greedy = Scripted()
    made(QgenAugmenter(passages=2, k=5, temperature=0.0, top_p=None)).augment(CORPUS, generator=greedy,
                                                                             workdir=tmp_path)
    assert len(greedy.prompts) == 2  # another sampling setting is another cache folder


def test_a_generator_without_per_call_sampling_fails_in_one_line_unless_the_setting_is_off(tmp_path):
    from retbench import ConfigError

    class Plain:
        name = "plain"

        def get_params(self):
            return {}

        def generate(self, prompts, *, max_new_tokens):
            return [" Find it\nQuery: paris capital" for _ in prompts]

    with pytest.raises(ConfigError, match="qgen: generator 'plain' takes no per-call temperature, top_p"):
        made(QgenAugmenter(passages=2, k=5)).augment(CORPUS, generator=Plain(), workdir=tmp_path)
    items = made(QgenAugmenter(passages=2, k=5, temperature=None, top_p=None)).augment(
        CORPUS, generator=Plain(), workdir=tmp_path)
    assert [i["query"] for i in items] == ["paris capital", "paris capital"]


def test_qgen_is_few_shot_and_keeps_the_query_line():
    from retbench_synth.drama import QGEN_PROMPT

    assert QGEN_PROMPT.count("\nQuery: ") == 3 and QGEN_PROMPT.endswith("Passage: {passage}\nTask:")
    assert clean_query(" Find a city\nQuery: \"paris capital\"\nmore") == "paris capital"
    assert clean_query("a title with no query line") == ""


def test_qgen_counts_answers_without_a_query_and_copies_of_its_examples(tmp_path):
    from retbench_synth.drama import copies_example

    assert copies_example("How many individual reefs make up the Great Barrier Reef, off Queensland?")
    assert copies_example("the great barrier reef off the coast of queensland")  # the example passage's words
    assert not copies_example("paris capital") and not copies_example("metformin side effects in children")

    class Copying(Scripted):
        def generate(self, prompts, **kwargs):
            self.prompts += prompts
            return ["Find facts\nQuery: how many individual reefs make up the great barrier reef", "no query here",
                    "Query: x", "Query: lyon capital"][: len(prompts)]

    augmenter = made(QgenAugmenter(passages=4, k=6))
    items = augmenter.augment(CORPUS, generator=Copying(), workdir=tmp_path)
    assert [i["query"] for i in items] == ["lyon capital"]  # no toy passage matches the reef query
    assert augmenter.last_counts_ == {"kept": 1, "rejected": 3, "no_query_line": 1, "too_short": 1,
                                      "copies_example": 1}


def test_a_labeller_is_any_retriever_by_name_including_a_trained_one(tmp_path):
    from retbench import ConfigError
    from retbench_synth.drama import labeler_spec

    assert labeler_spec("bm25", None) == ("bm25", {})
    assert labeler_spec("dpr@/runs/fit", {"pooling": "mean"}) == ("dpr", {"pooling": "mean", "init": "/runs/fit"})
    with pytest.raises(ConfigError, match="name@<fit"):
        labeler_spec("dpr@", None)
    with pytest.raises(ConfigError, match="no component factory"):
        CropAugmenter(passages=2, min_words=2).augment(CORPUS, workdir=tmp_path)


def test_rerank_reuses_the_queries_qgen_wrote_and_names_its_prompts(tmp_path):
    generator = Scripted()
    made(QgenAugmenter(passages=3, k=5)).augment(CORPUS, generator=generator, workdir=tmp_path)
    asked = len(generator.prompts)
    augmenter = made(RerankAugmenter(passages=4, k=5))
    augmenter.augment(CORPUS, generator=generator, workdir=tmp_path)
    new = generator.prompts[asked:]
    assert sum(p.startswith("Brainstorm") for p in new) == 1  # only the fourth passage
    assert sum(p.startswith("Rank") for p in new) == 4
    assert set(augmenter.last_prompts_["templates"]) == {"qgen", "rerank"}


def test_triplets_are_validated_and_malformed_ones_dropped(tmp_path):
    assert parse_triplet('noise {"query": "q", "positive": "p", "negative": "n"} noise') == {
        "query": "q", "positive": "p", "negative": "n"}
    assert parse_triplet('{"query": "q", "positive": ""}') is None
    augmenter = made(TripletAugmenter(passages=6))
    items = augmenter.augment(CORPUS, generator=Scripted(), workdir=tmp_path)
    assert len(items) == 1 and augmenter.last_counts_ == {"kept": 1, "rejected": 5}
    split = training_split(items, CORPUS, name="scifact", recipe="triplet")
    assert len(split.corpus) == len(PASSAGES) + 2
    assert split.qrels["triplet-d0"] == {"triplet-d0-pos": 1} and split.hard_negatives["triplet-d0"] == ["triplet-d0-neg"]
