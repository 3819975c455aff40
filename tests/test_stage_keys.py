"""Stage keys and run ids are pinned: a change to how the engine keys its stages would orphan
every cache and record made before it, so it must show up here (and be said in the change)."""

from __future__ import annotations

import pytest

import retbench
from retbench import Component, Injection, RunConfig, evaluate
from retbench.testing import EchoReader, make_plugin_manager


class LearningReader(EchoReader):
    name = "learning"

    def fit(self, train, *, retriever, workdir):
        (workdir / "seen.txt").write_text(str(len(retriever.search(train.queries, k=1))))

    def load_fit(self, *, workdir):
        pass


class TrainedInjector(Component):
    name = "trained-injector"
    version = "1"
    needs_fit = True

    def __init__(self, width: int = 2) -> None:
        self.width = width

    def fit(self, train, *, retriever, reader, inject_dir, seed, k, workdir):
        (workdir / "model.txt").write_text(str(len(train.queries)))

    def load_fit(self, *, workdir):
        pass

    def prepare(self, passages, *, reader, workdir):
        return Injection(kind=self.name, passages=list(passages)[: self.width], nbytes=1)


class EchoAugmenter(Component):
    name = "echo-augment"
    version = "1"
    uses_generator = False

    def __init__(self, passages: int = 2) -> None:
        self.passages = passages

    def augment(self, corpus, *, generator, workdir):
        return [{"qid": f"aug-{p.id}", "query": p.title, "positives": [p.id], "distractors": [], "source": self.name}
                for p in list(corpus)[: self.passages]]


class Plugin:
    @retbench.hookimpl
    def retbench_register_readers(self, register):
        register(LearningReader)

    @retbench.hookimpl
    def retbench_register_injectors(self, register):
        register(TrainedInjector)

    @retbench.hookimpl
    def retbench_register_augmenters(self, register):
        register(EchoAugmenter)


CONFIGS = {
    "search": {"retriever": "counting"},
    "search-k10": {"retriever": "counting", "k": 10, "limit": 3},
    "fit": {"retriever": "counting", "fit_split": "train", "seed": 3},
    "augment": {"retriever": "counting", "fit_split": "train", "augment": "echo-augment", "augment_ratio": 1.0},
    "reader": {"retriever": "counting", "reader": "echo", "read_k": 2},
    "closed-book": {"reader": "echo"},
    "fit-reader": {"retriever": "counting", "reader": "learning", "fit_split": "train", "fit_only": "reader"},
    "fit-injector": {"retriever": "counting", "reader": "echo", "injector": "trained-injector",
                     "fit_split": "train", "fit_only": "injector"},
    "rerank": {"retriever": "counting", "reranker": "overlap", "rerank_k": 3, "reader": "echo"},
}
# made with the engine as of the reranker commit (7806212); the keys of the runs without a
# reranker are the ones the commit before it (8d34a40) gives too
PINNED: dict[str, dict[str, str]] = {
    "search": {"run_id": "7e6262e8600fb840", "index": "5aa3cac26695e7a5", "search": "1c6ac9b769f591e9"},
    "search-k10": {"run_id": "8cd6fa2cc78ca5bd", "index": "5aa3cac26695e7a5", "search": "8d15cb3cf34cb1d1"},
    "fit": {"run_id": "19aaedbff1762352", "fit": "448d6098fd685d29", "index": "49986a49f585d943", "search": "f2c9b7203a9a0c4c"},
    "augment": {"run_id": "54ee9607d5d80ba2", "augment": "82e98f20574b1725", "fit": "50728402ff309c58", "index": "d703125fdec8c6b9", "search": "c1a6eb85ed2b330f"},
    "reader": {"run_id": "1192c46e66c7bd9b", "index": "5aa3cac26695e7a5", "search": "1c6ac9b769f591e9", "answer": "424a45256af813fe"},
    "closed-book": {"run_id": "aa26514b13783f89", "answer": "def81c102fcb3da2"},
    "fit-reader": {"run_id": "e2a1a96297ad4f0c", "index": "5aa3cac26695e7a5", "fit-reader": "f69186cd8cefc2ca", "search": "1c6ac9b769f591e9", "answer": "25eb0c287e34709a"},
    "fit-injector": {"run_id": "1e4a3a0bb4af973b", "index": "5aa3cac26695e7a5", "fit-injector": "cc5471faeab19266", "search": "1c6ac9b769f591e9", "answer": "7f171af8172702f2"},
    "rerank": {"run_id": "4c9d624a90845132", "index": "5aa3cac26695e7a5", "search": "1c6ac9b769f591e9", "rerank": "449f7e77ea50f278", "answer": "b5e7d2c874b9e210"},
}


def keys(cache, name: str) -> dict[str, str]:
    record = evaluate(RunConfig(dataset="mock", **CONFIGS[name]), pm=make_plugin_manager(Plugin()), cache=cache)
    return {"run_id": record.run_id[:16], **{stage: info["key"][:16] for stage, info in record.stages.items()}}


@pytest.mark.parametrize("name", CONFIGS)
def test_stage_keys_and_run_ids_are_unchanged(retbench_cache, name):
    assert keys(retbench_cache, name) == PINNED[name]
