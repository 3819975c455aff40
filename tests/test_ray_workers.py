"""`retbench run --workers N`: answer and rerank shards computed by Ray actors, and the
training-data generator's calls split over them, on a local Ray instance (127.0.0.1, 2 CPUs)
that the tests start and shut down."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from retbench.cli import cli
from retbench.component import component_identity
from retbench.engine.config import RunConfig
from retbench.engine.executors import PluginSource
from retbench.errors import ConfigError

MOCK_PLUGINS = Path(__file__).parent / "plugins"
RUN = ["run", "--dataset", "sample", "--retriever", "bm25", "--reranker", "overlap", "--rerank-k", "5",
       "--reader", "logging-echo", "--shard-size", "10", "--json"]


def invoke(home: Path, calls: Path, *args: str, **env: str):
    environment = {"RETBENCH_HOME": str(home), "RETBENCH_TEST_CALLS": str(calls), **env}
    return CliRunner(env=environment).invoke(cli, ["--plugins-dir", str(MOCK_PLUGINS), *args])


def answer_calls(calls: Path) -> list[tuple[int, list[str]]]:
    return [(int(pid), qids.split(",")) for line in calls.read_text().splitlines()
            for _, pid, qids in [line.split(" ", 2)] if line.startswith("answer ")]


def test_workers_compute_the_answer_shards_and_score_what_a_local_run_scores(ray_cluster, tmp_path):
    local = invoke(tmp_path / "local", tmp_path / "local.calls", *RUN)
    on_ray = invoke(tmp_path / "ray", tmp_path / "ray.calls", *RUN, "--workers", "2")
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    here, there = json.loads(local.stdout), json.loads(on_ray.stdout)
    assert there["metrics"] == here["metrics"] and there["run_id"] == here["run_id"]
    assert {k: v["key"] for k, v in there["stages"].items()} == {k: v["key"] for k, v in here["stages"].items()}
    assert there["environment"]["workers"] == {"name": "ray", "workers": 2, "address": "local",
                                               "resources": {"cpu": 1.0}}
    assert "workers" not in here["environment"]
    calls = answer_calls(tmp_path / "ray.calls")
    pids = {pid for pid, _ in calls}
    assert os.getpid() not in pids and len(pids) == 2, "both actors answered, the driver did not"
    assert sorted(q for _, qids in calls for q in qids) == sorted(q for _, qids in answer_calls(
        tmp_path / "local.calls") for q in qids), "every question answered once"
    again = invoke(tmp_path / "ray", tmp_path / "ray.calls", *RUN, "--workers", "2")
    assert all(stage["cached"] for stage in json.loads(again.stdout)["stages"].values())


def test_a_failing_shard_on_a_worker_stops_the_run_in_one_line_and_the_finished_shards_resume(ray_cluster, tmp_path):
    from retbench.data.datasets.sample import SampleDataset

    victim = list(SampleDataset().load("test", workdir=tmp_path / "prepared").queries)[55]
    calls = tmp_path / "calls"
    failed = invoke(tmp_path, calls, *RUN, "--workers", "2", RETBENCH_TEST_FAIL_ON=victim)
    assert failed.exit_code != 0
    message = str(failed.exception) + failed.output
    assert "stage 'answer' on Ray workers: shard 5:" in message and f"cannot answer {victim}" in message
    assert "reader 'logging-echo'" in message
    answered = {q for _, qids in answer_calls(calls) for q in qids}
    calls.write_text("")
    resumed = invoke(tmp_path, calls, *RUN, "--workers", "2")
    assert resumed.exit_code == 0, resumed.output
    again = {q for _, qids in answer_calls(calls) for q in qids}
    assert victim in again and not (answered & again), "finished shards are not answered again"


def test_worker_options_are_checked_before_any_work(tmp_path):
    result = invoke(tmp_path, tmp_path / "calls", *RUN, "--ray-address", "127.0.0.1:6379")
    assert result.exit_code != 0 and "--ray-address and --worker-resources need --workers" in str(result.exception)
    result = invoke(tmp_path, tmp_path / "calls", *RUN, "--workers", "2", "--worker-resources", "cpu")
    assert "--worker-resources: 'cpu' is not NAME=NUMBER" in str(result.exception)
    from retbench.engine.workers import WorkerPlan

    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        WorkerPlan(0)


def test_split_evenly_keeps_order_and_balances_lengths():
    from retbench.engine.workers import split_evenly

    assert split_evenly(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_evenly([1], 3) == [[1]]
    assert split_evenly([], 2) == []


def test_the_pooled_generator_answers_as_the_local_one_and_keeps_its_identity(ray_cluster, retbench_tiny_llama,
                                                                            tmp_path, monkeypatch):
    from retbench_readers.hf_generator import HFGenerator

    from retbench.engine.workers import PooledGenerator, RayWorkers, WorkerPlan

    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path))
    args = {"model": str(retbench_tiny_llama), "max_new_tokens": 6}
    local = HFGenerator(**args)
    config = RunConfig(dataset="sample", reader="rag", generator="hf", generator_args=args)
    workers = RayWorkers(WorkerPlan(2, plugins=PluginSource()), config, tmp_path)
    try:
        pooled = PooledGenerator(local, workers)
        prompts = [f"question {i}: what is {i} plus {i}?" for i in range(5)]
        assert pooled.generate(prompts) == local.generate(prompts)
        assert len(pooled.last_usage_) == 5
        contexts, targets = prompts[:3], [" four", " six", " eight"]
        assert pooled.loglikelihood(contexts, targets) == pytest.approx(local.loglikelihood(contexts, targets),
                                                                        abs=1e-4)
        assert component_identity(pooled) == component_identity(local)
    finally:
        workers.close()
