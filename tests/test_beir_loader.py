"""Malformed BEIR input fails naming file, line and field, and leaves nothing in the cache."""

from __future__ import annotations

import json

import pytest

from retbench.data.datasets.beir import BeirFolder
from retbench.errors import ConfigError, DataFormatError


def load(folder, tmp_path, split="test"):
    return BeirFolder(location=str(folder)).load(split, workdir=tmp_path / "prepared")


def leftovers(tmp_path):
    prepared = tmp_path / "prepared"
    return [p for p in prepared.rglob("*") if p.is_file() and not p.name.endswith(".lock")] if prepared.exists() else []


def test_reads_a_valid_folder(beir_folder, tmp_path):
    split = load(beir_folder(), tmp_path)
    assert len(split.corpus) == 5
    assert list(split.queries) == ["q0", "q1", "q2"]
    assert split.qrels == {"q0": {"d0": 1}, "q1": {"d1": 1}, "q2": {"d2": 1}}
    assert split.corpus.get(["d3"])[0].title == "T3"
    again = load(beir_folder(), tmp_path)
    assert again.corpus.fingerprint == split.corpus.fingerprint
    assert again.revision == split.revision


def good_rows(n=3):
    return [json.dumps({"_id": f"d{i}", "title": "", "text": f"t {i}"}) for i in range(n)]


@pytest.mark.parametrize(
    ("corpus", "line", "field", "message"),
    [
        ("\n".join([*good_rows(2), '{"_id": "d9", "text": broken}']) + "\n", 3, None, "invalid JSON"),
        ("\n".join([*good_rows(1), '{"text": "no id"}']) + "\n", 2, "_id", "missing required field"),
        ("\n".join([*good_rows(3), json.dumps({"_id": "d1", "text": "again"})]) + "\n", 4, "_id", "duplicate id 'd1'"),
        ("\n".join([*good_rows(1), '["a", "list"]']) + "\n", 2, None, "expected a JSON object"),
        ("\n".join([*good_rows(1), '{"_id": "dx", "text": 5}']) + "\n", 2, "text", "expected a string"),
    ],
)
def test_malformed_corpus(beir_folder, tmp_path, corpus, line, field, message):
    folder = beir_folder(corpus=corpus, qrels="query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    with pytest.raises(DataFormatError) as info:
        load(folder, tmp_path)
    error = info.value
    assert error.path.endswith("corpus.jsonl")
    assert error.line == line
    assert error.field == field
    assert message in str(error)
    assert f"line {line}" in str(error)
    assert leftovers(tmp_path) == []


def test_wrong_encoding_names_the_line(beir_folder, tmp_path):
    corpus = ("\n".join(good_rows(2)) + "\n").encode() + '{"_id": "d7", "text": "caf\u00e9"}\n'.encode("latin-1")
    with pytest.raises(DataFormatError, match=r"corpus.jsonl, line 3: not valid UTF-8"):
        load(beir_folder(corpus=corpus, qrels="q0\td0\t1\n"), tmp_path)
    assert leftovers(tmp_path) == []


def test_empty_corpus(beir_folder, tmp_path):
    with pytest.raises(DataFormatError, match="corpus is empty"):
        load(beir_folder(corpus="\n\n"), tmp_path)
    assert leftovers(tmp_path) == []


def test_qrels_pointing_at_unknown_document(beir_folder, tmp_path):
    qrels = "query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\tmissing-doc\t1\n"
    with pytest.raises(DataFormatError) as info:
        load(beir_folder(qrels=qrels), tmp_path)
    assert (info.value.line, info.value.field) == (3, "corpus-id")
    assert "'missing-doc' is not in the corpus" in str(info.value)


def test_qrels_pointing_at_unknown_query(beir_folder, tmp_path):
    with pytest.raises(DataFormatError) as info:
        load(beir_folder(qrels="query-id\tcorpus-id\tscore\nq9\td0\t1\n"), tmp_path)
    assert (info.value.line, info.value.field) == (2, "query-id")


def test_qrels_bad_score_and_shape(beir_folder, tmp_path):
    with pytest.raises(DataFormatError, match="line 2, field 'score'"):
        load(beir_folder(qrels="query-id\tcorpus-id\tscore\nq0\td0\thigh\n"), tmp_path)
    with pytest.raises(DataFormatError, match="expected 3 tab-separated fields"):
        load(beir_folder(qrels="q0 d0 1\n"), tmp_path)


def test_queries_missing_text(beir_folder, tmp_path):
    with pytest.raises(DataFormatError, match=r"queries.jsonl, line 1, field 'text'"):
        load(beir_folder(queries='{"_id": "q0"}\n'), tmp_path)


def test_missing_split_lists_the_ones_there(beir_folder, tmp_path):
    with pytest.raises(ConfigError, match="splits found: test"):
        load(beir_folder(), tmp_path, split="dev")


def test_answers_file_is_read(beir_folder, tmp_path):
    answers = json.dumps({"_id": "q0", "answers": ["zero"], "type": "number"}) + "\n"
    split = load(beir_folder(answers=answers), tmp_path)
    assert split.answers == {"q0": ["zero"]}
    assert split.query_types == {"q0": "number"}
