from __future__ import annotations

import json

import pytest

import retbench_bm25.plugin
import retbench_dense.plugin
import retbench_synth.plugin
from retbench import ConfigError, RetbenchError, RunConfig, evaluate
from retbench.testing import make_plugin_manager
from retbench_synth.hybrid import HybridRetriever, fuse

BM25 = {"q1": {"a": 12.0, "b": 7.0, "c": 1.0}, "q2": {"x": 3.0}}
DENSE = {"q1": {"c": 0.9, "a": 0.8, "d": 0.1}, "q2": {}}


def test_reciprocal_rank_fusion_sums_one_over_k_plus_rank():
    fused = fuse([BM25, DENSE], ["q1", "q2", "q3"], k=10, method="rrf", weights=None, norm="min-max", rrf_k=60)
    assert fused["q1"]["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["q1"]["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["q1"]["b"] == pytest.approx(1 / 62) and list(fused["q1"])[:2] == ["a", "c"]
    assert fused["q2"] == {"x": pytest.approx(1 / 61)} and fused["q3"] == {}


def test_interpolation_normalises_each_member_then_weights_them():
    fused = fuse([BM25, DENSE], ["q1"], k=2, method="interpolation", weights=[0.25, 0.75], norm="min-max", rrf_k=60)
    a = 0.25 * 1.0 + 0.75 * (0.8 - 0.1) / 0.8
    c = 0.25 * 0.0 + 0.75 * 1.0
    assert fused["q1"] == {"c": pytest.approx(c), "a": pytest.approx(a)}


@pytest.mark.parametrize("params, message", [
    ({"method": "max"}, "method must be one of"),
    ({"method": "interpolation", "norm": "l2"}, "norm must be one of"),
    ({"weights": [1.0]}, "1 weights for 2 members"),
])
def test_bad_fusion_settings_are_clear_errors(params, message):
    settings = {"method": "rrf", "weights": None, "norm": "min-max", "rrf_k": 60, **params}
    with pytest.raises(ConfigError, match=message):
        fuse([BM25, DENSE], ["q1"], k=2, **settings)


@pytest.mark.parametrize("members, message", [
    ("bm25", "two or more"), ("bm25,bm25", "each member once"), ("bm25,hybrid", "cannot itself"),
])
def test_bad_members_are_clear_errors(members, message):
    with pytest.raises(ConfigError, match=message):
        HybridRetriever(members=members).members_


def test_member_args_must_name_members():
    with pytest.raises(ConfigError, match="not members"):
        HybridRetriever(members="bm25,dpr", member_args={"ance": {}}).members_


def test_hybrid_of_bm25_and_a_dense_retriever_runs_and_is_cached(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_synth.plugin, retbench_bm25.plugin, retbench_dense.plugin)  # members from here
    args = {"members": "bm25,dpr", "member_args": {"dpr": {"model": str(retbench_tiny_bert)}}}
    config = RunConfig(dataset="mock", retriever="hybrid", retriever_args=args, k=5)
    record = evaluate(config, pm=pm, cache=retbench_cache)
    members = record.components["retriever"]["fingerprint"]["members"]
    assert [m["name"] for m in members] == ["bm25", "dpr"] and members[1]["fingerprint"]["query_model"]["revision"]
    assert record.metrics["nDCG@10"] > 0
    again = evaluate(config, pm=pm, cache=retbench_cache)
    assert again.cached and again.metrics == record.metrics
    other = evaluate(RunConfig(dataset="mock", retriever="hybrid", k=5,
                               retriever_args={**args, "method": "interpolation", "weights": [0.7, 0.3]}),
                     pm=pm, cache=retbench_cache)
    assert other.stages["search"]["key"] != record.stages["search"]["key"]


def test_members_come_from_the_runs_plugins_only(retbench_cache):
    config = RunConfig(dataset="mock", retriever="hybrid", retriever_args={"members": "bm25,oracle"}, k=5)
    with pytest.raises(RetbenchError, match="unknown retriever .bm25."):  # installed, but not a plugin of this run
        evaluate(config, pm=make_plugin_manager(retbench_synth.plugin), cache=retbench_cache)
    record = evaluate(config, pm=make_plugin_manager(retbench_synth.plugin, retbench_bm25.plugin), cache=retbench_cache)
    assert [m["name"] for m in record.components["retriever"]["fingerprint"]["members"]] == ["bm25", "oracle"]


def test_finding_the_plugin_imports_neither_torch_nor_ranx():
    import subprocess
    import sys

    code = "import sys, retbench_synth.plugin; sys.exit('torch' in sys.modules or 'ranx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_member_from_a_plugins_dir_file_works_through_the_cli(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from retbench.cli import cli

    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "mine.py").write_text(
        "import retbench\nfrom retbench.testing import ReverseRetriever\n\n"
        "class Mine(ReverseRetriever):\n    name = 'mine'\n\n"
        "@retbench.hookimpl\ndef retbench_register_retrievers(register):\n    register(Mine)\n")
    args = ["run", "--retriever", "hybrid", "--retriever-arg", "members=bm25,mine", "--dataset", "sample", "--json"]
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path / "plugins"), *args])
    assert result.exit_code == 0, result.output
    members = json.loads(result.stdout)["components"]["retriever"]["fingerprint"]["members"]
    assert [m["name"] for m in members] == ["bm25", "mine"]
    blocked = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path / "plugins"), "--block-plugin", "mine", *args])
    assert blocked.exit_code != 0 and "unknown retriever 'mine'" in str(blocked.exception)
