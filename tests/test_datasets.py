"""Dataset loaders: DPR / multi-hop / MIRACL formats on small files, subsets, and the real
files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from retbench import RunConfig, evaluate
from retbench.data.datasets.beir import BeirFolder
from retbench.data.datasets.dpr import (
    NaturalQuestions,
    TriviaQA,
    load_qa_csv,
    load_wikipedia,
)
from retbench.data.datasets.miracl import Miracl
from retbench.data.datasets.multihop import HotpotQA, TwoWikiMultihopQA
from retbench.errors import ConfigError, DataFormatError
from retbench.testing import make_plugin_manager

SHARED = Path(os.environ.get("RETBENCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")


def test_qa_csv_with_quotes_and_literal_answers(tmp_path):
    path = tmp_path / "x-test.qa.csv"
    path.write_text('who said "hello"\t[\'Ann "A" Smith\', "B\'s"]\nplain\t[\'x\']\n', encoding="utf-8")
    queries, answers = load_qa_csv(path)
    assert queries == {"0": 'who said "hello"', "1": "plain"}
    assert answers["0"] == ['Ann "A" Smith', "B's"]


def test_qa_csv_bad_answers_name_the_line(tmp_path):
    path = tmp_path / "x-test.qa.csv"
    path.write_text("ok\t['a']\nbroken\t['unclosed\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"x-test.qa.csv, line 2, field 'answers'"):
        load_qa_csv(path)


def test_wikipedia_tsv_streams_into_arrow(tmp_path):
    path = tmp_path / "psgs_w100.tsv"
    path.write_text('id\ttext\ttitle\n1\t"Aaron ( or ; ""Ahärôn"") is"\tAaron\n2\tsecond passage\tB\n', encoding="utf-8")
    corpus = load_wikipedia(path, workdir=tmp_path / "prep")
    assert corpus.ids == ["1", "2"]
    assert corpus.get(["1"])[0].text == 'Aaron ( or ; "Ahärôn") is'
    path.write_text("id\ttext\ttitle\n1\ttext\tA\n1\tagain\tB\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 3, field 'id': duplicate id '1'"):
        load_wikipedia(path, workdir=tmp_path / "prep")


def test_a_memory_mapped_corpus_crosses_processes_as_its_path(tmp_path):
    import pickle

    from retbench import Corpus, Passage

    path = tmp_path / "psgs_w100.tsv"
    path.write_text("id\ttext\ttitle\n" + "".join(f"{i}\tpassage number {i}\tT{i}\n" for i in range(2000)),
                    encoding="utf-8")
    corpus = load_wikipedia(path, workdir=tmp_path / "prep")
    sent = pickle.dumps(corpus)
    assert len(sent) < 1000 and str(corpus.path).encode() in sent, "the path, not the table"
    received = pickle.loads(sent)
    assert received.ids == corpus.ids and received.fingerprint == corpus.fingerprint
    assert received.slice(5, 6)[0].text == "passage number 5"
    small = Corpus.from_passages([Passage(id="a", text="in memory")])
    assert pickle.loads(pickle.dumps(small)).get(["a"])[0].text == "in memory" and small.path is None


def test_nq_needs_its_files(tmp_path):
    with pytest.raises(ConfigError, match="--data-dir"):
        NaturalQuestions().load("test", workdir=tmp_path)


def multihop_file(tmp_path):
    records = [
        {"_id": "a", "type": "comparison", "question": "Who is older, X or Y?", "answer": "X",
         "context": [["X", ["X was born in 1900."]], ["Y", ["Y was born", " in 1950."]], ["Z", ["Unrelated."]]],
         "supporting_facts": [["X", 0], ["Y", 0]]},
        {"_id": "b", "type": "compositional", "question": "Where was X born?", "answer": "Oslo",
         "context": [["X", ["X was born in 1900."]], ["W", ["W is in Oslo."]]],
         "supporting_facts": [["X", 0], ["W", 0]]},
        {"_id": "c", "type": "comparison", "question": "Which is taller?", "answer": "W",
         "context": [["W", ["W is in Oslo."]]], "supporting_facts": [["W", 0]]},
    ]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_multihop_corpus_from_context_paragraphs(tmp_path):
    split = TwoWikiMultihopQA(location=str(multihop_file(tmp_path))).load("dev", workdir=tmp_path / "prep")
    assert len(split.corpus) == 4, "identical paragraphs shared by questions are kept once"
    titles = {p.id: p.title for p in split.corpus}
    assert sorted(titles[d] for d in split.qrels["a"]) == ["X", "Y"]
    assert split.corpus.get([d for d in split.qrels["a"] if titles[d] == "Y"])[0].text == "Y was born in 1950."
    assert split.query_types == {"a": "comparison", "b": "compositional", "c": "comparison"}
    assert split.answers["b"] == ["Oslo"]


def test_per_type_subset_and_scores(tmp_path, retbench_cache):
    path = multihop_file(tmp_path)
    config = RunConfig(dataset=f"2wikimultihopqa:{path}", split="dev", retriever="counting", per_type=1)
    record = evaluate(config, pm=make_plugin_manager(), cache=retbench_cache)
    assert set(record.per_query) == {"a", "b"}, "the first question of each type"
    assert record.dataset["query_subset"] == "first 1 per question type"
    assert "R@2 [comparison]" in record.metrics and "R@2 [compositional]" in record.metrics


def test_sampling_is_seeded(retbench_cache):
    def sampled(seed):
        config = RunConfig(dataset="sample", retriever="counting", sample=10, seed=seed)
        return set(evaluate(config, pm=make_plugin_manager(), cache=retbench_cache).per_query)

    assert sampled(1) == sampled(1) != sampled(2)


def test_closed_book_dataset_without_corpus_refuses_retrieval(tmp_path, retbench_cache):
    folder = tmp_path / "triviaqa"
    folder.mkdir()
    (folder / "trivia-test.qa.csv").write_text("q one\t['zebra']\n", encoding="utf-8")
    config = RunConfig(dataset="triviaqa", data_dir=str(tmp_path), retriever="counting")
    with pytest.raises(ConfigError, match="no passage corpus on disk"):
        evaluate(config, pm=make_plugin_manager(), cache=retbench_cache)
    closed_book = RunConfig(dataset="triviaqa", data_dir=str(tmp_path), reader="echo")
    assert evaluate(closed_book, pm=make_plugin_manager(), cache=retbench_cache).metrics == {"EM": 0.0, "F1": 0.0}


def test_miracl_needs_a_language(tmp_path):
    with pytest.raises(ConfigError, match="miracl:<lang>"):
        Miracl(data_dir=str(tmp_path)).load("dev", workdir=tmp_path)


@needs_shared
@pytest.mark.shared_data
def test_shared_data_loads_with_published_counts(tmp_path):
    work = tmp_path / "prep"
    scifact = BeirFolder(location=str(SHARED / "scifact")).load("test", workdir=work)
    assert (len(scifact.corpus), len(scifact.queries), sum(map(len, scifact.qrels.values()))) == (5183, 300, 339)
    nq = NaturalQuestions(data_dir=str(SHARED)).load("test", workdir=work)
    assert (len(nq.queries), len(nq.corpus)) == (2655, 2600)
    assert len(load_qa_csv(SHARED / "nq" / "nq-test.qa.csv")[0]) == 3610
    trivia = TriviaQA(data_dir=str(SHARED)).load("test", workdir=work)
    assert (len(trivia.queries), len(trivia.corpus)) == (11313, 0)
    wiki = TwoWikiMultihopQA(data_dir=str(SHARED)).load("dev", workdir=work)
    assert (len(wiki.queries), len(wiki.corpus)) == (500, 3306)
    assert sorted(set(wiki.query_types.values())) == ["bridge_comparison", "comparison", "compositional", "inference"]
    hotpot = HotpotQA(data_dir=str(SHARED)).load("dev", workdir=work)
    assert (len(hotpot.queries), len(hotpot.corpus)) == (500, 4961)
    for lang, topics, judgments in (("sw", 482, 5092), ("yo", 119, 1188)):
        miracl = Miracl(location=lang, data_dir=str(SHARED)).load("dev", workdir=work)
        assert (len(miracl.queries), sum(map(len, miracl.qrels.values()))) == (topics, judgments)
    assert miracl.queries["10020#0"] == "Odun wo ni w\u1ecdn \u1e63e idije Olympiiki ak\u1ecdk\u1ecd?"


@needs_shared
@pytest.mark.shared_data
def test_nq_gold_passages_top_k_accuracy(retbench_cache):
    config = RunConfig(dataset="nq", data_dir=str(SHARED), retriever="counting", limit=200)
    record = evaluate(config, pm=make_plugin_manager(), cache=retbench_cache)
    assert 0 < record.metrics["Top-20"] <= record.metrics["Top-100"] <= 1
    assert list(record.metrics)[:4] == ["Top-1", "Top-5", "Top-20", "Top-100"]


def test_a_dataset_of_parts_reports_the_mean_of_its_parts(retbench_cache):
    """As CQADupStack: each forum is run on its own and every forum weighs the same."""
    import retbench
    from retbench.testing.mocks import mock_split

    class Part(retbench.Component):
        name = "part"
        version = "1"

        def __init__(self, location: str | None = None):
            self.location = location

        def load(self, split, *, workdir):
            data = mock_split(split)
            keep = {"a": ["q1"], "b": ["q2", "q3", "q4"]}[self.location]
            data.queries = {q: data.queries[q] for q in keep}
            data.qrels = {q: data.qrels[q] for q in keep}
            data.name = f"part-{self.location}"
            return data

    class Whole(Part):
        name = "whole"

        def members(self):
            return ["part:a", "part:b"]

    events = []

    class Plugin:
        @retbench.hookimpl
        def retbench_register_datasets(self, register):
            register(Part)
            register(Whole)

        @retbench.hookimpl
        def retbench_run_start(self, config):
            events.append(("start", config["dataset"]))

        @retbench.hookimpl
        def retbench_run_finish(self, record):
            events.append(("finish", record.dataset["name"]))

    pm = make_plugin_manager(Plugin())
    parts = [evaluate(RunConfig(dataset=f"part:{p}", retriever="reverse"), pm=pm, cache=retbench_cache)
             for p in "ab"]
    events.clear()
    whole = evaluate(RunConfig(dataset="whole", retriever="reverse"), pm=pm, cache=retbench_cache)
    assert events == [("start", "whole"), ("start", "part:a"), ("finish", "part-a"), ("start", "part:b"),
                      ("finish", "part-b"), ("finish", "whole")], "observers see paired starts and finishes"
    expected = (parts[0].metrics["nDCG@10"] + parts[1].metrics["nDCG@10"]) / 2
    assert whole.metrics["nDCG@10"] == pytest.approx(expected)
    assert whole.dataset["name"] == "whole" and set(whole.dataset["parts"]) == {"part-a", "part-b"}
    assert "mean over the 2 parts" in whole.dataset["rules"]["averaging"]
    assert set(whole.per_query) == {"part-a/q1", "part-b/q2", "part-b/q3", "part-b/q4"}


def test_dpr_retriever_json_becomes_a_training_split(tmp_path):
    records = [
        {"question": "who wrote hamlet", "answers": ["Shakespeare"],
         "positive_ctxs": [{"title": "Hamlet", "text": "Hamlet is by Shakespeare.", "passage_id": "11"}],
         "negative_ctxs": [{"title": "Cats", "text": "Cats purr.", "passage_id": "12"}],
         "hard_negative_ctxs": [{"title": "Macbeth", "text": "Macbeth is a play.", "passage_id": "13"}]},
        {"question": "capital of norway", "answers": ["Oslo"],
         "positive_ctxs": [{"title": "Oslo", "text": "Oslo is the capital.", "passage_id": "14"}],
         "negative_ctxs": [], "hard_negative_ctxs": [{"title": "Hamlet", "text": "Hamlet is by Shakespeare.",
                                                      "passage_id": "11"}]},
    ]
    folder = tmp_path / "nq"
    folder.mkdir()
    (folder / "nq-train.json").write_text(json.dumps(records), encoding="utf-8")
    split = NaturalQuestions(data_dir=str(tmp_path)).load("train", workdir=tmp_path / "prep")
    assert sorted(split.corpus.ids) == ["11", "12", "13", "14"]
    assert split.qrels == {"0": {"11": 1}, "1": {"14": 1}}
    assert split.hard_negatives == {"0": ["13"], "1": ["11"]}
    assert split.answers["1"] == ["Oslo"]


def test_cqadupstack_forum_reads_from_data_dir(beir_folder, tmp_path):
    from retbench.data.datasets.beir import CqaDupStack

    forum = beir_folder()
    root = tmp_path / "root" / "cqadupstack"
    root.mkdir(parents=True)
    forum.rename(root / "gis")
    split = CqaDupStack(location="gis", data_dir=str(tmp_path / "root")).load("test", workdir=tmp_path / "prep")
    assert split.name == "cqadupstack-gis" and len(split.corpus) == 5
    assert len(CqaDupStack().members()) == 12 and CqaDupStack(location="gis").members() == []
    with pytest.raises(ConfigError, match="cqadupstack:<forum>"):
        CqaDupStack(location="nope", data_dir=str(tmp_path / "root")).load("test", workdir=tmp_path / "prep")
