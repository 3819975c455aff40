"""evaluate(): stages, cache reuse, resume, overwrite policies, training, readers."""

from __future__ import annotations

import pytest

import retbench
from retbench import RunConfig, evaluate
from retbench.attribution import ComponentError
from retbench.engine.cache import Cache, Overwrite
from retbench.errors import ConfigError, NotCachedError
from retbench.component import Component
from retbench.testing import CountingRetriever, make_plugin_manager


@pytest.fixture(autouse=True)
def reset_counts():
    CountingRetriever.calls.clear()


def run(cache, pm=None, **overrides):
    config = RunConfig(**{"dataset": "mock", "retriever": "counting", **overrides})
    return evaluate(config, pm=pm or make_plugin_manager(), cache=cache)


def test_oracle_scores_perfectly_and_reverse_does_worse(retbench_cache):
    oracle = run(retbench_cache, retriever="oracle")
    reverse = run(retbench_cache, retriever="reverse")
    assert oracle.metrics == {"nDCG@10": 1.0, "R@100": 1.0, "MRR@10": 1.0, "MAP@1000": 1.0}
    assert reverse.metrics["nDCG@10"] < 0.8
    assert oracle.dataset["evaluated_queries"] == 4


def test_second_identical_run_does_no_work(retbench_cache):
    first = run(retbench_cache)
    assert not first.cached
    assert CountingRetriever.calls == {"index": 1, "search": 1}
    second = run(retbench_cache)
    assert second.cached
    assert CountingRetriever.calls == {"index": 1, "search": 1}
    assert second.metrics == first.metrics
    assert second.run_id == first.run_id


def test_changed_parameter_or_k_misses_the_cache(retbench_cache):
    run(retbench_cache)
    run(retbench_cache, retriever_args={"lowercase": False})
    assert CountingRetriever.calls["index"] == 2
    run(retbench_cache, k=2)
    assert CountingRetriever.calls["index"] == 2, "a new k reuses the index"
    assert CountingRetriever.calls["load_index"] == 1


def test_search_time_parameters_reuse_the_index_and_key_the_search(retbench_cache):
    class Truncating(CountingRetriever):
        """Ranks by the first ``cut`` query terms only: a parameter that changes search, not the index."""

        name = "truncating"
        search_time_params = ("cut",)

        def __init__(self, lowercase: bool = True, cut: int | None = None) -> None:
            super().__init__(lowercase=lowercase)
            self.cut = cut

        def search(self, queries, *, k):
            return super().search({q: " ".join(t.split()[: self.cut]) for q, t in queries.items()}, k=k)

    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Truncating)

    pm = make_plugin_manager(Plugin())
    full = run(retbench_cache, pm=pm, retriever="truncating")
    cut = run(retbench_cache, pm=pm, retriever="truncating", retriever_args={"cut": 1})
    assert CountingRetriever.calls["index"] == 1, "one index serves every value of a search-time parameter"
    assert CountingRetriever.calls["search"] == 2, "a search-time parameter is part of the search key"
    assert cut.run_id != full.run_id and cut.components["retriever"]["params"]["cut"] == 1
    assert run(retbench_cache, pm=pm, retriever="truncating", retriever_args={"cut": 1}).cached
    assert run(retbench_cache, pm=pm, retriever="truncating", retriever_args={"lowercase": False}).cached is False
    assert CountingRetriever.calls["index"] == 2, "other parameters still key the index"


def test_search_resumes_from_finished_shards(retbench_cache):
    class Flaky(CountingRetriever):
        name = "flaky"
        fail_on: str | None = "q3"

        def search(self, queries, *, k):
            if self.fail_on in queries:
                raise RuntimeError("interrupted")
            return super().search(queries, k=k)

    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Flaky)

    pm = make_plugin_manager(Plugin())
    with pytest.raises(ComponentError, match="retriever 'flaky' .*failed in search: RuntimeError: interrupted"):
        run(retbench_cache, pm=pm, retriever="flaky", shard_size=1)
    assert CountingRetriever.calls["search"] == 2
    Flaky.fail_on = None
    record = run(retbench_cache, pm=pm, retriever="flaky", shard_size=1)
    assert CountingRetriever.calls["search"] == 4, "only the two missing shards were searched"
    assert record.metrics["nDCG@10"] > 0.5


def test_overwrite_policies(tmp_path):
    run(Cache(tmp_path, overwrite=Overwrite.ONLY_MISSING))
    run(Cache(tmp_path, overwrite=Overwrite.ALWAYS))
    assert CountingRetriever.calls["index"] == 2
    assert run(Cache(tmp_path, overwrite=Overwrite.NEVER)).cached
    with pytest.raises(NotCachedError, match="stage 'search' is not cached"):
        run(Cache(tmp_path, overwrite=Overwrite.NEVER), k=3)


def test_limit_takes_the_first_queries(retbench_cache):
    record = run(retbench_cache, limit=2)
    assert record.dataset["queries"] == 2
    assert set(record.per_query) == {"q1", "q2"}
    assert record.dataset["query_subset"] == "first 2 in file order"


def test_records_are_saved_with_a_trec_run(retbench_cache, tmp_path):
    record = run(retbench_cache)
    folder = retbench_cache.home / "runs" / record.run_id
    lines = (folder / "run.trec").read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", lines[0].split()[2], "1"]
    assert (folder / "record.json").is_file() and (folder / "record.per_query.json").is_file()


def test_fit_stage_is_cached_and_restored(retbench_cache):
    first = run(retbench_cache, fit_split="train")
    assert CountingRetriever.calls["fit"] == 1
    assert first.stages["fit"]["cached"] is False
    second = run(retbench_cache, fit_split="train")
    assert second.stages["fit"]["cached"] is True
    assert CountingRetriever.calls == {"fit": 1, "load_fit": 1, "index": 1, "search": 1}


def test_fit_needs_a_trainable_retriever(retbench_cache):
    with pytest.raises(ConfigError, match="oracle cannot be trained"):
        run(retbench_cache, retriever="oracle", fit_split="train")


def test_reader_answers_are_scored(retbench_cache):
    record = run(retbench_cache, retriever="oracle", reader="echo")
    assert record.metrics["EM"] == 0.5  # the echo reader returns the whole passage
    assert 0.5 < record.metrics["F1"] < 1
    assert record.cost["injection_bytes"] > 0
    assert record.components["injector"]["name"] == "in-context"
    assert run(retbench_cache, retriever="oracle", reader="echo").cached


def test_reader_without_retriever_gets_no_passages(retbench_cache):
    record = evaluate(RunConfig(dataset="mock", reader="echo"), pm=make_plugin_manager(), cache=retbench_cache)
    assert record.metrics == {"EM": 0.0, "F1": 0.0}


def test_self_hits_are_removed_when_the_dataset_asks(retbench_cache):
    from retbench.testing.mocks import MockDataset, mock_split

    class SelfHit(MockDataset):
        name = "selfhit"

        def load(self, split, *, workdir):
            data = mock_split(split)
            data.rules = retbench.EvalRules(ignore_identical_ids=True)
            return data

    class Echo(CountingRetriever):
        name = "returns-query-id"

        def search(self, queries, *, k):
            ranked = CountingRetriever.search(self, queries, k=k)
            return {q: {q: 99.0, **ranked[q]} for q in queries}

    class Plugin:
        @retbench.hookimpl
        def retbench_register_datasets(self, register):
            register(SelfHit)

        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Echo)

    pm = make_plugin_manager(Plugin())
    record = run(retbench_cache, pm=pm, dataset="selfhit", retriever="returns-query-id", k=3)
    trec = (retbench_cache.home / "runs" / record.run_id / "run.trec").read_text().split("\n")
    assert all(line.split()[0] != line.split()[2] for line in trec if line)
    assert record.dataset["rules"]["ignore_identical_ids"] is True


def test_unknown_parameter_names_the_known_ones(retbench_cache):
    with pytest.raises(ConfigError, match=r"has no parameter 'k3' \(parameters: lowercase\)"):
        run(retbench_cache, retriever_args={"k3": 1})


def test_a_trainable_reader_trains_on_the_retrievers_output(retbench_cache):
    from retbench.testing import EchoReader

    class LearningReader(EchoReader):
        name = "learning"
        fits = 0

        def fit(self, train, *, retriever, workdir):
            type(self).fits += 1
            seen = retriever.search(train.queries, k=1)
            (workdir / "seen.txt").write_text(str(len(seen)))
            self.seen_ = len(seen)

        def load_fit(self, *, workdir):
            self.seen_ = int((workdir / "seen.txt").read_text())

    class Plugin:
        @retbench.hookimpl
        def retbench_register_readers(self, register):
            register(LearningReader)

    pm = make_plugin_manager(Plugin())
    first = run(retbench_cache, pm=pm, reader="learning", fit_split="train")
    assert LearningReader.fits == 1 and "fit-reader" in first.stages
    assert CountingRetriever.calls["fit"] == 1, "the retriever trained first"
    second = run(retbench_cache, pm=pm, reader="learning", fit_split="train")
    assert LearningReader.fits == 1 and second.cached
    # --fit-only reader: the retriever keeps its starting state (REALM fine-tuning's fixed index)
    reader_only = run(retbench_cache, pm=pm, reader="learning", fit_split="train", fit_only="reader")
    assert CountingRetriever.calls["fit"] == 1 and "fit" not in reader_only.stages
    assert reader_only.config["fit_only"] == "reader" and "fit_only" not in second.config
    with pytest.raises(ConfigError, match="--fit-only injector: injector 'in-context' cannot be trained"):
        run(retbench_cache, pm=pm, reader="learning", fit_split="train", fit_only="injector")
    with pytest.raises(ConfigError, match="--fit-only: unknown role 'readers'"):
        run(retbench_cache, pm=pm, reader="learning", fit_split="train", fit_only="readers")
    with pytest.raises(ConfigError, match="--fit-only needs --fit-split"):
        run(retbench_cache, pm=pm, reader="learning", fit_only="reader")


@pytest.mark.parametrize("report, problem", [
    (["loss"], "a list, expected a mapping or None"),
    ({"train_seconds": "12 s"}, "field 'train_seconds' is str, expected int or float"),
    ({"steps": 2.5}, "field 'steps' is float, expected int"),
])
def test_a_fit_report_with_a_mistyped_declared_field_is_refused_naming_the_retriever(retbench_cache, report, problem):
    class Reporting(CountingRetriever):
        name = "reporting"

        def fit(self, train, *, negatives, workdir, seed):
            return report

    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Reporting)

    with pytest.raises(retbench.RetbenchError, match=f"retriever 'reporting'.*unusable fit report: {problem}"):
        run(retbench_cache, pm=make_plugin_manager(Plugin()), retriever="reporting", fit_split="train")


def test_fit_report_default_negatives_and_fingerprint_reach_the_record(retbench_cache):
    class Sampler(Component):
        name = "first-other"
        version = "1"

        def sample(self, batch, *, corpus, retriever, k, seed):
            return [[] for _ in batch]

    class Trained(CountingRetriever):
        name = "trained"
        default_negatives = "first-other"
        weights = "v1"

        def fit(self, train, *, negatives, workdir, seed):
            super().fit(train, negatives=negatives, workdir=workdir, seed=seed)
            return {"loss_curve": [2.0, 1.0], "negatives": negatives.name, "seed": seed}

        def fingerprint(self):
            return {"weights": type(self).weights}

    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Trained)

        @retbench.hookimpl
        def retbench_register_negative_samplers(self, register):
            register(Sampler)

    pm = make_plugin_manager(Plugin())
    record = run(retbench_cache, pm=pm, retriever="trained", fit_split="train", seed=5)
    assert record.training["fit"]["negatives"] == "first-other" and record.training["fit"]["seed"] == 5
    assert record.training["fit"]["train"]["split"] == "train" and record.training["fit"]["loss_curve"] == [2.0, 1.0]
    assert record.components["retriever"]["fingerprint"] == {"weights": "v1"}
    assert run(retbench_cache, pm=pm, retriever="trained", fit_split="train", seed=5).cached
    Trained.weights = "v2"  # other weights behind the same parameters: nothing cached applies
    assert not run(retbench_cache, pm=pm, retriever="trained", fit_split="train", seed=5).stages["fit"]["cached"]


def test_a_split_slice_gives_disjoint_training_and_evaluation_questions(retbench_cache):
    from retbench.engine.state import load_split
    from retbench.testing import MockDataset

    dataset = MockDataset()
    head = load_split(dataset, "test[:2]", workdir=retbench_cache.home)
    tail = load_split(dataset, "test[2:]", workdir=retbench_cache.home)
    assert list(head.queries) == ["q1", "q2"] and list(tail.queries) == ["q3", "q4"]
    assert head.split == "test[:2]" and set(tail.qrels) == {"q3", "q4"}
    record = run(retbench_cache, split="test[-1:]", fit_split="test[:3]")
    assert record.dataset["split"] == "test[-1:]" and record.training["fit"]["train"]["queries"] == 3
