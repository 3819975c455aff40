"""Every hook spec: documented with its exact signature, well-formed, and exercised here."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from click.testing import CliRunner

import retbench
from retbench import RunConfig, evaluate
from retbench.host import hookspecs
from retbench.cli import cli
from retbench.host.registry import collect_registries
from retbench.testing import make_plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
SPECS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("retbench_")]


def test_specs_found():
    assert len(SPECS) == 12


@pytest.mark.parametrize("name", SPECS)
def test_spec_is_documented_with_its_exact_signature(name):
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"### `{name}({params})`" in DOCS.read_text(), f"docs/hooks.md lacks {name}({params})"


@pytest.mark.parametrize("name", SPECS)
def test_spec_is_well_formed(name):
    spec = getattr(hookspecs, name)
    source = inspect.getsource(spec)
    body = source.split('"""')[-1].strip()
    assert body == "", f"{name} must have an empty body"
    doc = inspect.getdoc(spec) or ""
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"{name} docstring lacks :param {param}:"
    assert all(p.annotation is not inspect.Parameter.empty for p in inspect.signature(spec).parameters.values())


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_has_a_test(name):
    assert f"test_hook_{name}" in globals(), f"tests/test_hooks.py has no test_hook_{name}"


def test_documented_hooks_all_exist():
    documented = {line.split("`")[1].split("(")[0] for line in DOCS.read_text().splitlines()
                  if line.startswith("### `")}
    assert documented == set(SPECS)


def _registered(kind: str, cls: type) -> None:
    class Plugin:
        @retbench.hookimpl
        def hook(self, register):
            register(cls, aliases=(f"{cls.name}-alias",))

    setattr(Plugin, f"retbench_register_{kind}", Plugin.hook)
    del Plugin.hook
    pm = make_plugin_manager(Plugin())
    registry = collect_registries(pm)[kind]
    assert registry.get(cls.name) is cls
    assert registry.get(f"{cls.name}-alias") is cls


def _component(name: str) -> type:
    return type(name.title(), (retbench.Component,), {"name": name, "version": "1"})


def test_hook_retbench_register_datasets():
    _registered("datasets", _component("ds"))


def test_hook_retbench_register_retrievers():
    _registered("retrievers", _component("ret"))


def test_hook_retbench_register_rerankers():
    _registered("rerankers", _component("rr"))


def test_hook_retbench_register_readers():
    _registered("readers", _component("rdr"))


def test_hook_retbench_register_injectors():
    _registered("injectors", _component("inj"))


def test_hook_retbench_register_negative_samplers():
    _registered("negative_samplers", _component("neg"))


def test_hook_retbench_register_augmenters():
    _registered("augmenters", _component("aug"))


def test_hook_retbench_register_generators():
    _registered("generators", _component("gen"))


def test_hook_retbench_register_metrics(retbench_cache):
    class Longest(retbench.Component):
        """Length of the answer in characters (a toy answer metric)."""

        name = "answer-chars"
        version = "1"
        higher_is_better = False
        level = "answer"

        def compute(self, split, *, run, answers):
            return {a.qid: float(len(a.text)) for a in answers}

    class Plugin:
        @retbench.hookimpl
        def retbench_register_metrics(self, register):
            register(Longest)

    pm = make_plugin_manager(Plugin())
    config = RunConfig(dataset="mock", retriever="oracle", reader="echo", metrics=["nDCG@10", "answer-chars"])
    record = evaluate(config, pm=pm, cache=retbench_cache)
    assert record.metrics["answer-chars"] > 0
    assert record.higher_is_better["answer-chars"] is False


def test_hook_retbench_register_commands(tmp_path, monkeypatch):
    plugin = tmp_path / "hello_plugin.py"
    plugin.write_text(
        "import click\nfrom retbench import hookimpl\n\n"
        "@hookimpl\ndef retbench_register_commands(cli):\n"
        "    @cli.command()\n    def hello():\n        click.echo('hello from a plugin')\n"
    )
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "hello"])
    assert result.exit_code == 0, result.output
    assert "hello from a plugin" in result.output


def test_hook_retbench_run_start_and_finish(retbench_cache):
    seen = []

    class Observer:
        @retbench.hookimpl
        def retbench_run_start(self, config):
            seen.append(("start", config["retriever"]))

        @retbench.hookimpl
        def retbench_run_finish(self, record):
            seen.append(("finish", record.metrics["nDCG@10"]))

    pm = make_plugin_manager(Observer())
    evaluate(RunConfig(dataset="mock", retriever="oracle"), pm=pm, cache=retbench_cache)
    assert seen == [("start", "oracle"), ("finish", 1.0)]


test_hook_retbench_run_start = test_hook_retbench_run_start_and_finish
test_hook_retbench_run_finish = test_hook_retbench_run_start_and_finish
