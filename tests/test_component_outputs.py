"""The pipeline checks what retrievers and readers return before scoring or caching it, and
names the component when it is wrong (issue 14, probe: unchecked retriever output)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

import retbench
from retbench import RunConfig, evaluate
from retbench.attribution import ComponentError, RetbenchWarning
from retbench.testing import EchoReader, ReverseRetriever, make_plugin_manager
from retbench.testing.mocks import MOCK_PASSAGES


def retriever(name: str, result) -> type:
    class Bad(ReverseRetriever):
        def search(self, queries, *, k):
            return result(queries, k)

    Bad.name = name
    return Bad


ALL = [p.id for p in MOCK_PASSAGES]
BAD = {
    "nan": lambda qs, k: {q: {"d1": math.nan} for q in qs},
    "inf": lambda qs, k: {q: {"d1": math.inf} for q in qs},
    "unknown-id": lambda qs, k: {q: {"nope": 1.0} for q in qs},
    "wrong-type": lambda qs, k: [("d1", 1.0)],
    "text-score": lambda qs, k: {q: {"d1": "high"} for q in qs},
    "unasked": lambda qs, k: {"q-other": {"d1": 1.0}},
    "raises": lambda qs, k: 1 / 0,
}


def plugin_manager(*classes: type):
    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            for cls in classes:
                if issubclass(cls, ReverseRetriever):
                    register(cls)

        @retbench.hookimpl
        def retbench_register_readers(self, register):
            for cls in classes:
                if issubclass(cls, EchoReader):
                    register(cls)

    return make_plugin_manager(Plugin())


@pytest.mark.parametrize("name", sorted(BAD))
def test_invalid_search_output_is_refused_naming_the_retriever_and_never_cached(name, retbench_cache):
    pm = plugin_manager(retriever(name, BAD[name]))
    with pytest.raises(ComponentError, match=f"retriever '{name}' \\(plugin 'test-plugin-0'\\)"):
        evaluate(RunConfig(dataset="mock", retriever=name), pm=pm, cache=retbench_cache)
    search = retbench_cache.home / "search"
    assert not list(search.rglob("manifest.json")) and not list(search.rglob("0*.json")), "nothing committed"


def test_more_than_k_results_are_cut_to_the_best_k(retbench_cache):
    pm = plugin_manager(retriever("greedy", lambda qs, k: {q: {d: float(i) for i, d in enumerate(ALL)} for q in qs}))
    with pytest.warns(RetbenchWarning, match="more than k=2"):
        record = evaluate(RunConfig(dataset="mock", retriever="greedy", k=2), pm=pm, cache=retbench_cache)
    trec = (retbench_cache.home / "runs" / record.run_id / "run.trec").read_text().splitlines()
    assert len(trec) == 2 * 4 and {line.split()[2] for line in trec} == {"d6", "d5"}


def test_a_reader_returning_too_few_answers_is_named(retbench_cache):
    class Forgetful(EchoReader):
        name = "forgetful"

        def answer(self, queries, injections):
            return super().answer(queries, injections)[:-1]

    pm = plugin_manager(Forgetful)
    with pytest.raises(ComponentError, match="reader 'forgetful' .*3 answers for 4 questions"):
        evaluate(RunConfig(dataset="mock", retriever="oracle", reader="forgetful"), pm=pm, cache=retbench_cache)
    assert not list((retbench_cache.home / "answer").rglob("manifest.json"))


PLUGIN = '''
import math, retbench
from retbench.testing.mocks import MockPlugin, ReverseRetriever

class NanScores(ReverseRetriever):
    name = "nan-scores"
    def search(self, queries, *, k):
        return {q: {"d1": math.nan} for q in queries}

@retbench.hookimpl
def retbench_register_datasets(register):
    MockPlugin().retbench_register_datasets(register)

@retbench.hookimpl
def retbench_register_retrievers(register):
    register(NanScores)
'''


def test_the_cli_says_which_component_and_plugin_in_one_line(tmp_path):
    (tmp_path / "nanplugin.py").write_text(PLUGIN)
    result = subprocess.run([sys.executable, "-m", "retbench", "--plugins-dir", str(tmp_path), "run", "--retriever",
                             "nan-scores", "--dataset", "mock"], capture_output=True, text=True,
                            env={**__import__("os").environ, "RETBENCH_HOME": str(tmp_path / "home")})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.endswith(": done")]  # progress notes
    assert len(lines) == 1 and "retriever 'nan-scores' (plugin 'nanplugin'" in lines[0], result.stderr
    assert "scores must be finite" in lines[0] and "Traceback" not in result.stderr
    assert not list((tmp_path / "home" / "search").rglob("manifest.json"))


def test_an_exception_in_fit_names_the_retriever(retbench_cache):
    from retbench.testing import CountingRetriever

    class Untrainable(CountingRetriever):
        name = "untrainable"

        def fit(self, train, *, negatives, workdir, seed=0):
            raise ValueError("no gradients")

    from retbench.testing import make_plugin_manager

    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Untrainable)

    pm = make_plugin_manager(Plugin())
    with pytest.raises(ComponentError, match=r"retriever 'untrainable' \(plugin 'test-plugin-0'\) failed in fit: "
                                             "ValueError: no gradients"):
        evaluate(RunConfig(dataset="mock", retriever="untrainable", fit_split="train"), pm=pm, cache=retbench_cache)
