"""The reranker kind: a stage between search and answer, keyed, cached, resumable and checked."""

from __future__ import annotations

import pytest
import retbench
from retbench import Component, ConfigError, RunConfig, evaluate
from retbench.attribution import ComponentError
from retbench.testing import OverlapReranker, check_reranker, make_plugin_manager


@pytest.fixture(autouse=True)
def reset_counts():
    OverlapReranker.pairs.clear()


def run(cache, pm=None, **overrides):
    config = RunConfig(**{"dataset": "mock", "retriever": "reverse", **overrides})
    return evaluate(config, pm=pm or make_plugin_manager(), cache=cache)


def test_the_mock_reranker_meets_its_contract():
    check_reranker(OverlapReranker)


def test_reranking_the_reverse_ranking_lifts_it_and_is_cached(retbench_cache):
    plain = run(retbench_cache)
    reranked = run(retbench_cache, reranker="overlap")
    assert reranked.metrics["nDCG@10"] > plain.metrics["nDCG@10"]
    assert OverlapReranker.pairs["scored"] == 4 * 6  # every query's candidates: the whole mock corpus
    assert reranked.stages["rerank"]["cached"] is False
    assert reranked.cost["rerank_pairs_per_second"] > 0
    assert reranked.config["reranker"] == "overlap" and reranked.run_id != plain.run_id
    again = run(retbench_cache, reranker="overlap")
    assert again.stages["rerank"]["cached"] and OverlapReranker.pairs["scored"] == 24
    assert again.metrics == reranked.metrics


def test_rerank_k_bounds_the_candidates_and_the_ranking(retbench_cache):
    record = run(retbench_cache, reranker="overlap", rerank_k=2)
    assert OverlapReranker.pairs["scored"] == 4 * 2
    assert record.metrics["R@100"] < 1.0  # documents below rerank-k are dropped
    assert "rerank_k" in record.config and "reranker" in record.config


def test_a_run_without_a_reranker_keeps_its_keys(retbench_cache):
    config = RunConfig(dataset="mock", retriever="reverse")
    assert not {"reranker", "reranker_args", "rerank_k"} & set(config.to_dict())
    assert "--reranker" not in config.command()


def test_a_reader_reads_the_reranked_passages(retbench_cache):
    plain = run(retbench_cache, reader="echo", read_k=1)
    reranked = run(retbench_cache, reader="echo", read_k=1, reranker="overlap")
    assert reranked.metrics["EM"] > plain.metrics["EM"]


def test_an_interrupted_rerank_resumes_from_its_shards(retbench_cache):
    class Flaky(OverlapReranker):
        name = "flaky-rerank"
        fail_on: str | None = "q3"

        def rerank(self, queries, candidates):
            if self.fail_on in queries:
                raise RuntimeError("interrupted")
            return super().rerank(queries, candidates)

    class Plugin:
        @retbench.hookimpl
        def retbench_register_rerankers(self, register):
            register(Flaky)

    pm = make_plugin_manager(Plugin())
    with pytest.raises(ComponentError, match="reranker 'flaky-rerank' .*failed in rerank: RuntimeError"):
        run(retbench_cache, pm=pm, reranker="flaky-rerank", shard_size=1)
    assert OverlapReranker.pairs["scored"] == 2 * 6
    Flaky.fail_on = None
    run(retbench_cache, pm=pm, reranker="flaky-rerank", shard_size=1)
    assert OverlapReranker.pairs["scored"] == 4 * 6, "only the two missing shards were reranked"


@pytest.mark.parametrize(("scores", "message"), [
    (lambda c: {q: {p.id: 1.0 for p in ps[:-1]} for q, ps in c.items()}, "left out 1 of the 6 candidates"),
    (lambda c: {q: {**{p.id: 1.0 for p in ps}, "nowhere": 0.0} for q, ps in c.items()}, "not in the corpus"),
    (lambda c: {q: {p.id: float("nan") for p in ps} for q, ps in c.items()}, "scores must be finite"),
])
def test_a_bad_reranking_is_refused_naming_the_reranker(retbench_cache, scores, message):
    class Bad(OverlapReranker):
        name = "bad-rerank"

        def rerank(self, queries, candidates):
            return scores(candidates)

    class Plugin:
        @retbench.hookimpl
        def retbench_register_rerankers(self, register):
            register(Bad)

    with pytest.raises(ComponentError, match=f"reranker 'bad-rerank'.*{message}"):
        run(retbench_cache, pm=make_plugin_manager(Plugin()), reranker="bad-rerank")


def test_a_component_lacking_its_contract_is_refused_when_built(retbench_cache):
    class NoRerank(Component):
        name = "no-rerank"
        version = "1"

        def score(self, pairs):
            return []

    class Plugin:
        @retbench.hookimpl
        def retbench_register_rerankers(self, register):
            register(NoRerank)

    with pytest.raises(ConfigError, match="reranker 'no-rerank' .*does not fulfil the reranker contract: it lacks "
                                          "rerank"):
        run(retbench_cache, pm=make_plugin_manager(Plugin()), reranker="no-rerank")
    assert OverlapReranker.pairs["scored"] == 0


def test_reranker_options_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="give --retriever too"):
        RunConfig(dataset="mock", reader="echo", reranker="overlap")
    with pytest.raises(ConfigError, match="--rerank-k given, but no --reranker"):
        RunConfig(dataset="mock", retriever="reverse", rerank_k=5)
    with pytest.raises(ConfigError, match="--rerank-k must be at least 1"):
        RunConfig(dataset="mock", retriever="reverse", reranker="overlap", rerank_k=0)


def test_the_cli_runs_a_reranker_and_rejects_an_unknown_one(invoke):
    result = invoke("run", "--dataset", "mock", "--retriever", "reverse", "--reranker", "overlap", "--rerank-k", "3",
                    "--json")
    assert result.exit_code == 0, result.output
    assert '"reranker": "overlap"' in result.output
    result = invoke("run", "--dataset", "mock", "--retriever", "reverse", "--reranker", "nope")
    assert result.exit_code != 0 and "unknown reranker 'nope' (available: " in str(result.exception)
    assert "overlap" in str(result.exception)
    result = invoke("run", "--dataset", "mock", "--retriever", "reverse", "--reranker-arg", "x=1")
    assert result.exit_code != 0 and "no --reranker" in str(result.exception)
