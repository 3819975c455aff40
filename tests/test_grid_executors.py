"""`retbench grid` on its two executors: the cells in this process, or as Ray tasks on a local
Ray instance (127.0.0.1, 2 CPUs) that the tests start and shut down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from retbench.cli import cli
from retbench.engine.executors import parse_resources
from retbench.errors import ConfigError

MOCK_PLUGINS = Path(__file__).parent / "plugins"
GRID = ["grid", "--retriever", "bm25,reverse", "--dataset", "sample", "--k", "10,100", "--json"]


def grid(home: Path, *args: str):
    env = {"RETBENCH_HOME": str(home)}
    result = CliRunner(env=env).invoke(cli, ["--plugins-dir", str(MOCK_PLUGINS), *args])
    return result


def from_cache(record: dict) -> bool:
    return all(stage["cached"] for stage in record["stages"].values())


def scores(stdout: str) -> list[tuple]:
    return [(r["config"]["retriever"], r["config"]["k"], r["metrics"]) for r in json.loads(stdout)]


def test_ray_cells_score_what_local_cells_score_and_records_name_their_executor(ray_cluster, tmp_path):
    local = grid(tmp_path / "local", *GRID)
    on_ray = grid(tmp_path / "ray", *GRID, "--executor", "ray", "--cell-resources", "cpu=1")
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    assert scores(on_ray.stdout) == scores(local.stdout)
    assert [(r["config"]["retriever"], r["config"]["k"]) for r in json.loads(on_ray.stdout)] == [
        ("bm25", 10), ("bm25", 100), ("reverse", 10), ("reverse", 100)], "the grid's order"
    assert {r["environment"]["executor"]["name"] for r in json.loads(local.stdout)} == {"local"}
    executors = [r["environment"]["executor"] for r in json.loads(on_ray.stdout)]
    assert {e["name"] for e in executors} == {"ray"} and all(e["node"] for e in executors)
    again = grid(tmp_path / "ray", *GRID, "--executor", "ray")
    assert all(from_cache(r) for r in json.loads(again.stdout)), "a re-run does no work"


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_failing_cell_is_reported_and_the_others_are_kept(executor, request, tmp_path):
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    result = grid(tmp_path, "grid", "--retriever", "reverse,nonesuch", "--dataset", "sample", "--json",
                  "--executor", executor, "--save-record", str(tmp_path / "records"))
    assert result.exit_code == 1
    assert [r["config"]["retriever"] for r in json.loads(result.stdout)] == ["reverse"]
    assert "cell retriever=nonesuch: unknown retriever 'nonesuch'" in result.stderr
    assert "1 of 2 grid cells failed" in str(result.exception)
    assert len(list((tmp_path / "records").rglob("*.json"))) == 2  # the record and its per-query scores


def _grid_process(home: Path, calls: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RETBENCH_HOME": str(home), "RETBENCH_TEST_CALLS": str(calls),
           "RETBENCH_TEST_DIE_ON": "q100"}
    command = [sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), "grid", "--retriever",
               "reverse,slow-flaky", "--dataset", "sample", "--shard-size", "10", "--json", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_a_killed_local_grid_resumes_with_finished_cells_and_shards_from_the_cache(tmp_path):
    calls = tmp_path / "calls.txt"
    killed = _grid_process(tmp_path / "home", calls)
    assert killed.returncode == 9, killed.stderr  # slow-flaky's search dies like a killed process
    resumed = _grid_process(tmp_path / "home", calls)
    assert resumed.returncode == 0, resumed.stderr
    reverse, flaky = json.loads(resumed.stdout)
    assert from_cache(reverse) and not from_cache(flaky)
    searched = [line for line in calls.read_text().splitlines() if line.startswith("search")]
    assert len(searched) == 12, "the killed cell resumed: 10 shards of 12 remained"


def test_a_ray_worker_that_dies_fails_its_cell_only_and_a_re_run_completes_it(ray_cluster, tmp_path):
    calls = tmp_path / "calls.txt"
    env = {"RETBENCH_HOME": str(tmp_path / "home"), "RETBENCH_TEST_CALLS": str(calls), "RETBENCH_TEST_DIE_ON": "q100"}
    args = ["--plugins-dir", str(MOCK_PLUGINS), "grid", "--retriever", "reverse,slow-flaky", "--dataset", "sample",
            "--shard-size", "10", "--json", "--executor", "ray"]
    runner = CliRunner(env=env)  # the driver's RETBENCH_* variables reach the Ray workers
    first = runner.invoke(cli, args)
    assert first.exit_code == 1 and "cell retriever=slow-flaky: Ray task failed" in first.stderr
    assert [r["config"]["retriever"] for r in json.loads(first.stdout)] == ["reverse"]
    second = runner.invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert [from_cache(r) for r in json.loads(second.stdout)] == [True, False]

def test_cell_resources_parse_and_bad_ones_are_one_line_errors(tmp_path):
    assert parse_resources("cpu=1, gpu=0,accelerator=0.5") == {"cpu": 1.0, "gpu": 0.0, "accelerator": 0.5}
    for bad in ("cpu", "cpu=one", "=1", "gpu=-1"):
        with pytest.raises(ConfigError, match="--cell-resources: .* is not NAME=NUMBER"):
            parse_resources(bad)
    result = grid(tmp_path, "grid", "--retriever", "reverse", "--dataset", "sample", "--cell-resources", "cpu=1")
    assert result.exit_code != 0 and "need --executor ray" in str(result.exception)


def test_cells_sharing_an_index_are_submitted_apart():
    from retbench.engine.config import RunConfig
    from retbench.engine.executors import submission_order

    cells = [RunConfig(retriever=r, dataset="sample", k=k) for r in ("bm25", "reverse") for k in (10, 100, 1000)]
    assert submission_order(cells) == [0, 3, 1, 4, 2, 5], "every index's first cell before any second one"
