"""Cache entries are never served half-replaced, damaged or stale (issue 14: concurrency,
tampering, leftovers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from retbench.cache import Cache, Overwrite
from retbench.integrity import remove_leftovers

MOCK_PLUGINS = Path(__file__).parent / "plugins"


def _cli(args, env):
    return subprocess.Popen([sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_reading_while_another_process_overwrites_always(tmp_path):
    """The reader finds the index finished under the lock, then reads it while a second process
    recomputes that index with --overwrite always (it used to clear the folder first)."""
    calls = tmp_path / "calls"
    env = {**os.environ, "RETBENCH_HOME": str(tmp_path / "home"), "RETBENCH_TEST_CALLS": str(calls)}
    args = ["run", "--retriever", "slow-flaky", "--dataset", "sample", "--json"]
    first = _cli(args, env)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    reader = _cli([*args, "--k", "5"], {**env, "RETBENCH_TEST_WAIT_FOR_INDEX": "2"})
    deadline = time.time() + 60
    while "load_index" not in calls.read_text() and time.time() < deadline:
        time.sleep(0.05)
    writer = _cli([*args, "--overwrite", "always"], {**env, "RETBENCH_TEST_SLEEP": "2"})
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert writer.wait(timeout=120) == 0, writer.stderr.read()
    assert calls.read_text().splitlines().count("index") == 2
    assert json.loads(out)["metrics"]


def test_overwrite_always_swaps_in_a_new_entry_and_cleans_leftovers(tmp_path):
    cache = Cache(tmp_path, overwrite=Overwrite.ALWAYS)
    stage = cache.stage("index", "k" * 64)

    def compute(target):
        (target.workdir / "data.txt").write_text("new")
        return {"model": str(target.workdir)}

    manifest, cached = cache.run_stage(stage, compute)
    assert not cached and manifest["model"] == str(stage.workdir), "paths point at the entry, not the staging one"
    assert (stage.workdir / "data.txt").read_text() == "new"
    siblings = sorted(p.name.split(".")[1].split("-")[0] for p in stage.path.parent.iterdir() if p != stage.path)
    assert siblings == ["lock", "new"]  # the staging path: a symlink to the entry
    (stage.path.parent / f"{stage.key}.new-dead").mkdir()  # a killed writer's
    remove_leftovers(stage.path, now=time.time() + 2 * 24 * 3600)
    assert sorted(p.name for p in stage.path.parent.iterdir()) == [stage.key, f"{stage.key}.lock"]
