"""Bad run options are refused before any work, with one line naming the option (issue 14)."""

from __future__ import annotations

import json


def test_a_non_positive_shard_size_is_refused_and_cannot_poison_the_cache(invoke, tmp_path):
    bad = invoke("run", "--retriever", "counting", "--dataset", "mock", "--shard-size", "-1")
    assert bad.exit_code != 0 and "--shard-size must be at least 1, got -1" in str(bad.exception)
    toml = tmp_path / "run.toml"
    toml.write_text('dataset = "mock"\nretriever = "counting"\nshard_size = 0\n')
    assert "--shard-size must be at least 1, got 0" in str(invoke("run", "--config", str(toml)).exception)
    assert not (tmp_path / "home" / "search").exists(), "nothing ran"
    good = invoke("run", "--retriever", "counting", "--dataset", "mock", "--json")
    assert good.exit_code == 0 and json.loads(good.stdout)["metrics"]["nDCG@10"] > 0.5
