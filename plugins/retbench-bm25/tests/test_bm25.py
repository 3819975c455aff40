from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from retbench_bm25.retriever import BM25

from retbench import RunConfig, evaluate
from retbench.errors import ConfigError
from retbench.testing import check_retriever, mock_split

SHARED_DATA = Path(os.environ.get("RETBENCH_SHARED_DATA") or Path(__file__).resolve().parents[4] / "shared" / "data")
SCIFACT = SHARED_DATA / "scifact"
PYSERINI_SCIFACT_NDCG10 = 0.6789  # Pyserini BEIR (v1.0.0) SciFact, BM25 flat

has_lucene = importlib.util.find_spec("pyserini") is not None
needs_lucene = pytest.mark.skipif(not has_lucene, reason="pyserini not installed (retbench-bm25[lucene])")
needs_scifact = pytest.mark.skipif(not SCIFACT.is_dir(), reason="../shared/data/scifact is absent")


def test_contract_bm25s():
    check_retriever(BM25)


@needs_lucene
@pytest.mark.lucene
def test_contract_lucene():
    check_retriever(BM25, {"backend": "lucene"})


def test_ranks_the_matching_passage_first(tmp_path):
    split = mock_split()
    bm25 = BM25()
    bm25.index(split.corpus, workdir=tmp_path)
    run = bm25.search({"x": "Which river flows through Vienna?", "none": "zzzz qqqq"}, k=2)
    assert next(iter(run["x"])) == "d4"
    assert run["none"] == {}, "a query with no known word retrieves nothing"


def test_bad_parameters_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="backend must be one of bm25s, lucene"):
        BM25(backend="elastic").index(mock_split().corpus, workdir=tmp_path)
    with pytest.raises(ConfigError, match="unknown stemmer 'klingon'"):
        BM25(stemmer="klingon").index(mock_split().corpus, workdir=tmp_path)


def test_sample_dataset_end_to_end(retbench_cache):
    record = evaluate(RunConfig(dataset="sample", retriever="bm25"), cache=retbench_cache)
    assert record.components["retriever"]["distribution"] == "retbench-bm25"
    assert record.metrics["nDCG@10"] > 0.8
    assert record.cost["index_bytes"] > 0


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RETBENCH_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "retbench", *args], capture_output=True, text=True, env=env)


def test_cli_typo_suggests_bm25(tmp_path):
    result = cli("run", "--retriever", "bm52", "--dataset", "sample", home=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "did you mean 'bm25'?" in result.stderr


@needs_scifact
@pytest.mark.shared_data
def test_scifact_bm25s_matches_pyserini_and_second_run_is_cached(tmp_path):
    args = ("run", "--retriever", "bm25", "--dataset", f"beir:{SCIFACT}", "--json")
    first = json.loads(cli(*args, home=tmp_path).stdout)
    assert abs(first["metrics"]["nDCG@10"] - PYSERINI_SCIFACT_NDCG10) <= 0.005
    assert first["dataset"]["evaluated_queries"] == 300
    start = time.perf_counter()
    second = cli(*args[:-1], home=tmp_path)
    elapsed = time.perf_counter() - start
    assert "no work done" in second.stdout
    assert elapsed < 2.0, f"a cached run took {elapsed:.2f}s"


@needs_lucene
@needs_scifact
@pytest.mark.lucene
@pytest.mark.shared_data
def test_scifact_lucene_matches_pyserini(tmp_path):
    result = cli("run", "--retriever", "bm25", "--retriever-arg", "backend=lucene", "--dataset", f"beir:{SCIFACT}",
                 "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert abs(json.loads(result.stdout)["metrics"]["nDCG@10"] - PYSERINI_SCIFACT_NDCG10) <= 0.001
