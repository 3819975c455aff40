"""The record's git hash is retbench's source tree, not the current directory's (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import retbench

MOCK_PLUGINS = Path(__file__).parent / "plugins"


def test_git_hash_is_retbench_s_not_the_working_directory_s(tmp_path):
    package = Path(retbench.__file__).resolve().parent
    ours = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True).stdout.strip()
    other = tmp_path / "elsewhere"
    other.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=other, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=other, check=True)
    theirs = subprocess.run(["git", "rev-parse", "HEAD"], cwd=other, capture_output=True, text=True).stdout.strip()
    result = subprocess.run([sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), "run",
                             "--retriever", "oracle", "--dataset", "mock", "--json"], cwd=other, capture_output=True,
                            text=True, env={**os.environ, "RETBENCH_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    recorded = json.loads(result.stdout)["environment"]["git"]
    assert recorded != theirs
    assert recorded == (ours or None)
