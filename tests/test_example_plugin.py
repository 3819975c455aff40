"""The README's plugin-author walk-through: pip-install the example package from its folder,
then find it with `retbench list` and run it with `retbench run`, as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "retbench-example-plugin"


def retbench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retbench", *args], capture_output=True, text=True, env=env)


def test_example_plugin_installs_lists_and_runs(tmp_path):
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(EXAMPLE)],
        capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "RETBENCH_HOME": str(tmp_path / "home")}
    listed = json.loads(retbench("list", "--json", env=env).stdout)
    example = next(row for row in listed if row["plugin"] == "example")
    assert example["distribution"] == "retbench-example-plugin"
    assert example["version"] == "0.1.0"
    assert example["registers"] == ["retriever: jaccard"]
    result = retbench("run", "--retriever", "jaccard", "--dataset", "sample", "--json", env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["components"]["retriever"]["distribution"] == "retbench-example-plugin"
    assert record["metrics"]["nDCG@10"] > 0.3
