"""A plugin whose registration clashes or raises is isolated: the others, `retbench list`,
`datasets list` and unrelated runs keep working (issue 14, probe: one name clash)."""

from __future__ import annotations

import json

from click.testing import CliRunner

import retbench
from retbench.cli import cli
from retbench.host.listing import plugin_rows
from retbench.host.registry import collect_registries
from retbench.testing import OracleRetriever, make_plugin_manager

CLASH = '''
import retbench
from retbench.testing.mocks import ReverseRetriever

class Impostor(ReverseRetriever):
    name = "bm25"

class Mine(ReverseRetriever):
    name = "mine"

@retbench.hookimpl
def retbench_register_retrievers(register):
    register(Mine)
    register(Impostor)
'''


def test_a_plugin_claiming_bm25_is_isolated_and_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "clash.py").write_text(CLASH)
    runner = CliRunner()
    listed = runner.invoke(cli, ["--plugins-dir", str(plugins), "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["plugin"]: row for row in json.loads(listed.stdout)}
    assert rows["clash"]["status"] == "failed" and rows["clash"]["distribution"] == str(plugins / "clash.py")
    assert "retriever name 'bm25' is already registered by plugin 'bm25'" in rows["clash"]["registers"][0]
    assert rows["bm25"]["status"] == "loaded" and "retriever: bm25" in rows["bm25"]["registers"]
    assert runner.invoke(cli, ["--plugins-dir", str(plugins), "datasets", "list"]).exit_code == 0
    run = runner.invoke(cli, ["--plugins-dir", str(plugins), "run", "--retriever", "bm25", "--dataset", "sample",
                              "--limit", "3", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["components"]["retriever"]["plugin"] == "bm25"
    mine = runner.invoke(cli, ["--plugins-dir", str(plugins), "run", "--retriever", "mine", "--dataset", "sample"])
    assert mine.exit_code != 0 and "unknown retriever 'mine'" in str(mine.exception), "nothing of it is half-used"


def test_a_bundled_plugin_keeps_its_name_whatever_the_loading_order():
    class Third:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(type("Fake", (OracleRetriever,), {"name": "reverse"}))

    pm = make_plugin_manager(builtin=False)
    pm.register(Third(), name="aaa-third-party")  # registered after the mocks but ...
    pm.distributions["mocks"] = ("retbench", "0")  # ... the mocks stand for a bundled plugin here
    pm.distributions["aaa-third-party"] = ("someone-else", "1")
    registries = collect_registries(pm)
    assert registries.retrievers.entry("reverse").plugin == "mocks"
    assert "aaa-third-party" in registries.failures
    rows = {r["plugin"]: r for r in plugin_rows(pm, registries)}
    assert rows["aaa-third-party"]["distribution"] == "someone-else"


def test_a_raising_registration_keeps_list_working(tmp_path, monkeypatch):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "boom.py").write_text("import retbench\n@retbench.hookimpl\n"
                                      "def retbench_register_datasets(register):\n    raise RuntimeError('boom')\n")
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "datasets", "list", "--json"])
    assert result.exit_code == 0 and "sample" in {r["name"] for r in json.loads(result.stdout)}
