"""`retbench list` and `datasets list` tell plugin authors the truth (issue 14, plugin-author gaps)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from retbench.cli import cli

OBSERVER = '''
import retbench

class Described(retbench.Component):
    """A dataset whose source is a description, not a download."""
    name = "described"
    version = "1"
    source = "Wikipedia, 2018 dump"

    def __init__(self):
        pass

    def load(self, split, *, workdir):
        raise NotImplementedError

@retbench.hookimpl
def retbench_register_datasets(register):
    register(Described)

@retbench.hookimpl
def retbench_run_finish(record):
    pass
'''


def _invoke(tmp_path, monkeypatch, *args):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "watcher.py").write_text(OBSERVER)
    return CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path / "plugins"), *args])


def test_observers_are_listed_and_found_by_hook(tmp_path, monkeypatch):
    rows = {r["plugin"]: r for r in json.loads(_invoke(tmp_path, monkeypatch, "list", "--json").stdout)}
    assert "observer: run_finish" in rows["watcher"]["registers"]
    by_hook = json.loads(_invoke(tmp_path, monkeypatch, "list", "--hook", "run_finish", "--json").stdout)
    assert [r["plugin"] for r in by_hook] == ["watcher"]


def test_a_misspelt_hook_is_an_error_with_a_suggestion(tmp_path, monkeypatch):
    result = _invoke(tmp_path, monkeypatch, "list", "--hook", "run_finsh")
    assert result.exit_code != 0 and "unknown hook 'run_finsh'; did you mean 'run_finish'" in str(result.exception)


def test_a_descriptive_source_is_not_download_on_use(tmp_path, monkeypatch):
    rows = {r["name"]: r for r in json.loads(_invoke(tmp_path, monkeypatch, "datasets", "list", "--json").stdout)}
    assert rows["described"]["downloadable"] is False
    assert rows["scifact"]["downloadable"] is True


def test_a_plugin_under_test_registers_on_the_retbench_pm_fixture(retbench_pm):
    """The README's recipe for plugin authors."""
    import retbench
    from retbench.host.registry import collect_registries
    from retbench.testing import ReverseRetriever

    class Mine(ReverseRetriever):
        name = "mine"

    class MyPlugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Mine)

    retbench_pm.register(MyPlugin(), name="my-plugin")
    assert collect_registries(retbench_pm).retrievers.entry("mine").plugin == "my-plugin"
