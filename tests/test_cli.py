"""The command line, in-process (CliRunner) and as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MOCK_PLUGINS = Path(__file__).parent / "plugins"


def test_run_prints_a_summary_and_repeating_it_says_cached(invoke):
    first = invoke("run", "--retriever", "counting", "--dataset", "mock")
    assert first.exit_code == 0, first.output
    assert "nDCG@10" in first.output and "computed" in first.output
    second = invoke("run", "--retriever", "counting", "--dataset", "mock")
    assert "came from the cache: no work done" in second.output


def test_json_and_quiet(invoke):
    result = invoke("run", "--retriever", "oracle", "--dataset", "mock", "--json")
    record = json.loads(result.stdout)
    assert record["metrics"]["nDCG@10"] == 1.0
    assert record["components"]["retriever"]["name"] == "oracle"
    quiet = invoke("run", "--retriever", "oracle", "--dataset", "mock", "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_unknown_retriever_is_one_line_with_a_suggestion():
    result = subprocess.run(
        [sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), "run", "--retriever", "oracel",
         "--dataset", "mock"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "unknown retriever 'oracel'; did you mean 'oracle'" in lines[0]


def test_broken_corpus_line_names_file_and_line(beir_folder, tmp_path):
    folder = beir_folder(corpus='{"_id": "d0", "text": "ok"}\n{"_id": "d1", "text": oops}\n', qrels="q0\td0\t1\n")
    env = {**os.environ, "RETBENCH_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), "run", "--retriever", "counting",
         "--dataset", f"beir:{folder}"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"{folder / 'corpus.jsonl'}, line 2: invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), "run", "--retriever", "counting",
         "--dataset", f"beir:{folder}", "--debug"], capture_output=True, text=True, env=env)
    assert "Traceback" in debug.stderr


def test_bad_arguments_are_clear(invoke):
    bad = invoke("run", "--retriever", "oracle", "--dataset", "mock", "--retriever-arg", "nokey")
    assert "expects key=value" in str(bad.exception)
    missing = invoke("run", "--retriever", "oracle")
    assert missing.exit_code != 0 and "missing --dataset" in str(missing.exception)


def test_config_file_and_flags(invoke, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('dataset = "mock"\nretriever = "counting"\nk = 3\n[retriever_args]\nlowercase = false\n')
    result = invoke("run", "--config", str(config), "--json")
    record = json.loads(result.stdout)
    assert record["config"]["k"] == 3
    assert record["components"]["retriever"]["params"] == {"lowercase": False}
    override = json.loads(invoke("run", "--config", str(config), "--k", "2", "--json").stdout)
    assert override["config"]["k"] == 2
    (tmp_path / "bad.toml").write_text('datset = "mock"\n')
    bad = invoke("run", "--config", str(tmp_path / "bad.toml"))
    assert "unknown key 'datset'" in str(bad.exception)


def test_grid_runs_the_cross_product(invoke):
    result = invoke("grid", "--retriever", "oracle,reverse,counting", "--dataset", "mock", "--k", "5,10", "--json")
    records = json.loads(result.stdout)
    assert len(records) == 6
    assert {(r["config"]["retriever"], r["config"]["k"]) for r in records} == {
        (r, k) for r in ("oracle", "reverse", "counting") for k in (5, 10)}


def test_list_shows_plugins_and_what_they_register(invoke):
    rows = json.loads(invoke("list", "--json").stdout)
    core = next(r for r in rows if r["plugin"] == "core")
    assert core["distribution"] == "retbench"
    assert "dataset: sample" in core["registers"]
    mock = next(r for r in rows if r["plugin"] == "mock_plugin")
    assert "retriever: oracle" in mock["registers"]
    only = json.loads(invoke("list", "--hook", "retbench_register_readers", "--json").stdout)
    assert "mock_plugin" in [r["plugin"] for r in only] and "core" not in [r["plugin"] for r in only]
    assert all(any(item.startswith("reader:") for item in r["registers"]) for r in only)
    assert "retbench plugins" in invoke("list").output


def test_train_command_caches_the_model(invoke):
    first = json.loads(invoke("train", "--retriever", "counting", "--dataset", "mock", "--json").stdout)["fit"]
    assert first["cached"] is False and Path(first["workdir"], "fit.json").is_file()
    again = json.loads(invoke("train", "--retriever", "counting", "--dataset", "mock", "--json").stdout)
    assert again["fit"]["cached"]


def test_datasets_list_and_prepare(invoke):
    assert "sample" in invoke("datasets", "list").output
    result = invoke("datasets", "prepare", "sample")
    assert result.exit_code == 0, result.output
    assert "300 documents, 120 queries" in result.output


def _cli(args, env):
    return subprocess.Popen([sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_runs_share_one_cache_safely(tmp_path):
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "RETBENCH_HOME": str(tmp_path / "home"), "RETBENCH_TEST_CALLS": str(calls),
           "RETBENCH_TEST_SLEEP": "1.5"}
    args = ["run", "--retriever", "slow-flaky", "--dataset", "sample", "--json"]
    procs = [_cli(args, env) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    records = [json.loads(out) for out, _ in outputs]
    assert len({json.dumps(r["metrics"], sort_keys=True) for r in records}) == 1
    log = calls.read_text().splitlines()
    assert log.count("index") == 1, log
    assert sum(line.startswith("search") for line in log) == 1, log


def test_a_killed_run_resumes(tmp_path):
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "RETBENCH_HOME": str(tmp_path / "home"), "RETBENCH_TEST_CALLS": str(calls),
           "RETBENCH_TEST_DIE_ON": "q100"}
    args = ["run", "--retriever", "slow-flaky", "--dataset", "sample", "--json", "--shard-size", "10"]
    killed = _cli(args, env)
    killed.communicate(timeout=120)
    assert killed.returncode == 9
    searched_before = [line for line in calls.read_text().splitlines() if line.startswith("search")]
    assert len(searched_before) == 2
    resumed = _cli(args, env)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    searched = [line for line in calls.read_text().splitlines() if line.startswith("search")]
    assert len(searched) == 12, "10 shards of 12 remained after the kill"
    assert json.loads(out)["dataset"]["queries"] == 120


def test_summary_shows_per_type_metric_names(invoke, tmp_path):
    """Names like 'R@2 [comparison]' must not be swallowed as rich markup."""
    import json as _json

    records = [{"_id": "a", "type": "comparison", "question": "x or y?", "answer": "x",
                "context": [["X", ["x text"]]], "supporting_facts": [["X", 0]]}]
    path = tmp_path / "dev.json"
    path.write_text(_json.dumps(records))
    result = invoke("run", "--retriever", "counting", "--dataset", f"2wikimultihopqa:{path}", "--metric", "R@2")
    assert "R@2 [comparison]" in result.output
