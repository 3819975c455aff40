"""Bad run options are refused before any work, with one line naming the option (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest


def test_a_non_positive_shard_size_is_refused_and_cannot_poison_the_cache(invoke, tmp_path):
    bad = invoke("run", "--retriever", "counting", "--dataset", "mock", "--shard-size", "-1")
    assert bad.exit_code != 0 and "--shard-size must be at least 1, got -1" in str(bad.exception)
    toml = tmp_path / "run.toml"
    toml.write_text('dataset = "mock"\nretriever = "counting"\nshard_size = 0\n')
    assert "--shard-size must be at least 1, got 0" in str(invoke("run", "--config", str(toml)).exception)
    assert not (tmp_path / "home" / "search").exists(), "nothing ran"
    good = invoke("run", "--retriever", "counting", "--dataset", "mock", "--json")
    assert good.exit_code == 0 and json.loads(good.stdout)["metrics"]["nDCG@10"] > 0.5


def test_an_unknown_metric_fails_before_any_work_with_a_suggestion(invoke, tmp_path):
    bad = invoke("run", "--retriever", "counting", "--dataset", "mock", "--metric", "ndcg@10")
    assert bad.exit_code != 0 and "unknown metric 'ndcg@10'; did you mean 'nDCG@10'" in str(bad.exception)
    assert not (tmp_path / "home" / "index").exists() and not (tmp_path / "home" / "prepared").exists()


def test_a_comma_separated_metric_list_is_accepted(invoke):
    result = invoke("run", "--retriever", "oracle", "--dataset", "mock", "--metric", "nDCG@10,R@2", "--json")
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["metrics"]) == ["nDCG@10", "R@2"]


def test_a_mistyped_parameter_names_component_and_parameter(invoke, tmp_path):
    bad = invoke("run", "--retriever", "counting", "--dataset", "mock", "--retriever-arg", "lowercase=abc")
    assert str(bad.exception) == "retriever 'counting': parameter 'lowercase' expects bool, got 'abc' (str)"
    toml = tmp_path / "run.toml"
    toml.write_text('dataset = "mock"\nretriever = "counting"\n[retriever_args]\nlowercase = 3\n')
    assert "parameter 'lowercase' expects bool, got 3 (int)" in str(invoke("run", "--config", str(toml)).exception)
    assert not (tmp_path / "home" / "index").exists()


def test_typecheck_follows_the_annotations():
    from retbench.errors import ConfigError
    from retbench.engine.typecheck import check_params

    class Thing:
        name = "thing"

        def __init__(self, k1: float = 0.9, layers: list[int] | None = None, mode: Literal["a", "b"] = "a",
                     path: Path | None = None, other: SomethingUnknown = None) -> None:  # noqa: F821
            pass

    check_params(Thing, {"k1": 1, "layers": [1, 2], "mode": "b", "path": "/x", "other": object()}, kind="retriever")
    for params, expected in (({"k1": "abc"}, "expects float"), ({"layers": [1, "x"]}, "expects list[int] | None"),
                             ({"mode": "c"}, "expects Literal"), ({"k1": True}, "expects float"),
                             ({"path": 3}, "expects Path | None")):
        with pytest.raises(ConfigError, match=expected):
            check_params(Thing, params, kind="retriever")


@pytest.mark.parametrize("split, message", [("test[5:5]", "selects no questions of the 4 in 'test'"),
                                            ("test[a:]", "expected NAME or NAME[START:STOP]")])
def test_a_split_selecting_nothing_or_malformed_is_refused(invoke, split, message):
    bad = invoke("run", "--retriever", "counting", "--dataset", "mock", "--split", split)
    assert bad.exit_code != 0 and message in str(bad.exception)


def test_a_raising_observer_is_named_and_neither_fails_the_run_nor_stops_a_grid(retbench_cache):
    import retbench
    from retbench import RunConfig, evaluate
    from retbench.attribution import RetbenchWarning
    from retbench.testing import make_plugin_manager

    class Observer:
        @retbench.hookimpl
        def retbench_run_finish(self, record):
            raise RuntimeError("tracker down")

    pm = make_plugin_manager(Observer())
    with pytest.warns(RetbenchWarning, match="observer plugin 'test-plugin-0' failed in retbench_run_finish: "
                                             "RuntimeError: tracker down"):
        records = [evaluate(RunConfig(dataset="mock", retriever=r), pm=pm, cache=retbench_cache)
                   for r in ("oracle", "reverse")]
    assert records[0].metrics["nDCG@10"] == 1.0 and records[1].metrics


def test_a_toml_value_of_the_wrong_type_names_file_and_key(invoke, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('dataset = "mock"\nretriever = "counting"\nk = "ten"\n')
    assert str(invoke("run", "--config", str(toml)).exception) == f"{toml}: key 'k' expects int, got 'ten' (str)"
    toml.write_text('dataset = "mock"\nretriever = "counting"\nretriever_args = 3\n')
    assert "key 'retriever_args' expects dict[str, Any], got 3" in str(invoke("run", "--config", str(toml)).exception)
