from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from retbench.cli import cli

MOCK_PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing in the suite may download from outside; download tests serve 127.0.0.1 and
    lift this themselves."""
    monkeypatch.setenv("RETBENCH_OFFLINE", "1")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance (127.0.0.1, 2 CPUs) for one test module, shut down after it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    """Run the CLI in-process with the mock plugins and a temporary cache."""
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def run(*args: str, plugins: bool = True):
        prefix = ["--plugins-dir", str(MOCK_PLUGINS)] if plugins else []
        return runner.invoke(cli, [*prefix, *args], catch_exceptions=True)

    return run


@pytest.fixture
def beir_folder(tmp_path):
    """Write a small BEIR folder; returns a function taking overrides for each file."""

    def write(corpus=None, queries=None, qrels=None, answers=None) -> Path:
        folder = tmp_path / "beir-data"
        (folder / "qrels").mkdir(parents=True, exist_ok=True)
        corpus = corpus if corpus is not None else "\n".join(
            json.dumps({"_id": f"d{i}", "title": f"T{i}", "text": f"text number {i} alpha"}) for i in range(5)
        ) + "\n"
        queries = queries if queries is not None else "\n".join(
            json.dumps({"_id": f"q{i}", "text": f"number {i}"}) for i in range(3)
        ) + "\n"
        qrels = qrels if qrels is not None else "query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\nq2\td2\t1\n"
        for name, content in (("corpus.jsonl", corpus), ("queries.jsonl", queries), ("qrels/test.tsv", qrels)):
            path = folder / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        if answers is not None:
            (folder / "answers.jsonl").write_text(answers)
        return folder

    return write
