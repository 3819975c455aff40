"""The stages of a run, as data: each names its key parts, how it computes its outputs, and how a
finished (or cached) output enters the run's state. The engine (:mod:`retbench.engine.state`)
walks :data:`STAGES` in order; a stage's key is the sha256 of its name and key parts.

Stage names are defined once, in :mod:`retbench.engine.names`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retbench.attribution import attributed
from retbench.engine.training_data import mix
from retbench.engine.cache import Stage, atomic_write_json, directory_bytes
from retbench.engine.capabilities import hand_generation_cache, wants_augment_generator
from retbench.engine.config import DEFAULT_RERANK_K
from retbench.engine.names import ANSWER, AUGMENT, FIT, FIT_INJECTOR, FIT_READER, INDEX, RERANK, SEARCH
from retbench.errors import ConfigError
from retbench.engine.measure import injection_cost_summary
from retbench.metrics.retrieval import remove_self_hits
from retbench.engine.accepted import checked_answers, checked_reranking, checked_run
from retbench.data.types import Answer, Injection, Run

if TYPE_CHECKING:
    from retbench.engine.state import RunState



@dataclass(frozen=True)
class StageSpec:
    """One stage. ``needed(state)``: does this run have it; ``key(state)``: the parts of its key
    (they may consult the components); ``compute(state, stage)``: write the outputs into the
    stage's folder or shards and return the manifest; ``load(state, stage, manifest, cached)``:
    put the outputs into the state. A ``lazy`` stage (the index) runs only when another stage's
    computation asks for it (``state.require``), so a fully cached run never loads an index.
    ``shard_work(state)``: the function computing one query shard of a stage made of them,
    declared by the generation-bound stages whose shards Ray workers may compute
    (:mod:`retbench.engine.workers`); it needs only the stages before it."""

    name: str
    needed: Callable[[RunState], bool]
    key: Callable[[RunState], dict[str, Any]]
    compute: Callable[[RunState, Stage], dict[str, Any]]
    load: Callable[[RunState, Stage, dict[str, Any], bool], None]
    lazy: bool = False
    shard_work: Callable[[RunState], Callable[[list[str]], Any]] | None = None


# --- augment --------------------------------------------------------------------------------------


def _augment_key(state: RunState) -> dict[str, Any]:
    return {"augmenters": [state.identity(f"augmenter:{a.name}") for a in state.c.augmenters],
            "generator": state.augment_identity(), "corpus": state.train.corpus.fingerprint,
            "seed": state.config.seed}


def _augment(state: RunState, stage: Stage) -> dict[str, Any]:
    items, counts = [], {}
    for augmenter in state.c.augmenters:
        with attributed(state.who(f"augmenter:{augmenter.name}"), "augment"):
            made = augmenter.augment(state.train.corpus, generator=state.data_generator(),
                                     workdir=state.generation_cache)
        counts[augmenter.name] = {"items": len(made), **getattr(augmenter, "last_counts_", {}),
                                  **({"prompts": augmenter.last_prompts_}
                                     if getattr(augmenter, "last_prompts_", None) else {})}
        items += made
    atomic_write_json(stage.workdir / "items.json", items)
    return {"recipe": state.augment_recipe(), "items": len(items), "counts": counts,
            "generator": state.augment_identity()}


def _load_augment(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    items = json.loads((stage.workdir / "items.json").read_text())
    train = state.train
    mixed = mix(train, items, recipe=state.augment_recipe(), ratio=state.config.augment_ratio,
                seed=state.config.seed)
    synthetic = len(mixed.queries) - len(train.queries)
    state.manifests[AUGMENT] = {**manifest, "mix": {
        "real": len(train.queries), "synthetic": synthetic, "augment_ratio": state.config.augment_ratio,
        "synthetic_per_real": round(synthetic / len(train.queries), 4) if train.queries else None}}
    state.retriever_train = mixed
    state.augment_key = stage.key


# --- training -------------------------------------------------------------------------------------


def _fit_key(state: RunState) -> dict[str, Any]:
    return {"retriever": state.retriever_index_identity(), "negatives": state.identity("negatives"),
            "train": state.train_key, "augment": state.augment_key, "augment_ratio": state.config.augment_ratio,
            "seed": state.config.seed,
            **({"generator": state.augment_identity()} if wants_augment_generator([state.c.negatives]) else {})}


def _fit(state: RunState, stage: Stage) -> dict[str, Any]:
    hand_generation_cache([state.c.negatives], state.generation_cache)
    return state.fit_component("retriever", stage, state.retriever_train, negatives=state.c.negatives,
                               seed=state.config.seed)


def _load_fit(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    state.restore(state.c.retriever, FIT, stage, cached)
    state.fit_key = stage.key


def _fit_reader_key(state: RunState) -> dict[str, Any]:
    # a reader that trains the retriever's query tower (REALM / ORQA) changes what the run's
    # searches return: the search key then names the reader's fit
    trains_queries = getattr(state.c.reader, "trains_query_encoder", None)
    with attributed(state.who("reader"), "fit"):
        state.co_trains = bool(trains_queries and trains_queries(state.c.retriever))
    return {"reader": state.identity("reader"), "generator": state.generator_identity(),
            "index": state.key_of(INDEX) if state.c.retriever is not None else None, **state.search_parts(),
            "train": state.train_key, "seed": state.config.seed,
            **({"query_encoder": True} if state.co_trains else {})}


def _fit_reader(state: RunState, stage: Stage) -> dict[str, Any]:
    if state.c.retriever is not None:
        state.require(INDEX)
    return state.fit_component("reader", stage, state.train, retriever=state.c.retriever)


def _load_fit_reader(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    state.restore(state.c.reader, FIT_READER, stage, cached)
    state.reader_fit_key = stage.key
    if state.co_trains:
        state.c.retriever.use_query_encoder(state.c.reader.fitted_query_encoder_)
        state.query_encoder_key = stage.key


def _fit_injector_key(state: RunState) -> dict[str, Any]:
    return {"injector": state.identity("injector"), "reader": state.identity("reader"),
            "generator": state.generator_identity(),
            "index": state.key_of(INDEX) if state.c.retriever is not None else None, **state.search_parts(),
            "read_k": state.read_k(), "train": state.train_key, "seed": state.config.seed}


def _fit_injector(state: RunState, stage: Stage) -> dict[str, Any]:
    if state.c.retriever is not None:
        state.require(INDEX)
    return state.fit_component("injector", stage, state.train, retriever=state.c.retriever, reader=state.c.reader,
                               inject_dir=state.inject_dir(), seed=state.config.seed, k=state.read_k())


def _load_fit_injector(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    state.restore(state.c.injector, FIT_INJECTOR, stage, cached)
    state.injector_fit_key = stage.key


# --- index, search, rerank ------------------------------------------------------------------------


def _index_key(state: RunState) -> dict[str, Any]:
    return {"retriever": state.retriever_index_identity(), "fit": state.fit_key,
            "corpus": state.split.corpus.fingerprint}


def _index(state: RunState, stage: Stage) -> dict[str, Any]:
    with attributed(state.who("retriever"), "index"):
        state.c.retriever.index(state.split.corpus, workdir=stage.workdir)
    state.index_ready = True
    return {"documents": len(state.split.corpus), "bytes": directory_bytes(stage.workdir)}


def _load_index(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    if state.index_ready:
        return
    retriever = state.c.retriever
    with state.timer.time(INDEX), attributed(state.who("retriever"), "load_index"):
        if hasattr(retriever, "load_index"):
            retriever.load_index(workdir=stage.workdir)
        else:
            retriever.index(state.split.corpus, workdir=Path(tempfile.mkdtemp(prefix="retbench-")))
    state.index_ready = True


def _search_k(state: RunState) -> int:
    return state.config.k + 1 if state.split.rules.ignore_identical_ids else state.config.k


def _search_key(state: RunState) -> dict[str, Any]:
    if len(state.split.corpus) == 0:
        raise ConfigError(
            f"dataset '{state.split.name}' has no passage corpus on disk, so nothing can be retrieved "
            "(a reader can still run closed-book without --retriever); see the dataset's documentation "
            "in `retbench datasets list`")
    return {"index": state.key_of(INDEX), "queries": state.dataset_key, "k": _search_k(state), **state.search_parts()}


def _search(state: RunState, stage: Stage) -> dict[str, Any]:
    k = _search_k(state)
    split = state.split

    def search_shard(shard: list[str]) -> Run:
        state.require(INDEX)
        with attributed(state.who("retriever"), "search"):
            found = state.c.retriever.search({q: split.queries[q] for q in shard}, k=k)
        return checked_run(found, shard, k=k, corpus=split.corpus, who=state.who("retriever"),
                           self_hits=split.rules.ignore_identical_ids)

    shards = state.sharded(stage, search_shard, "searching")
    return {"queries": len(split.queries), "shards": len(shards), "shard_size": state.config.shard_size}


def _load_search(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    run = state.read_shards(stage, manifest)
    state.run = remove_self_hits(run, k=state.config.k) if state.split.rules.ignore_identical_ids else run


def rerank_k(state: RunState) -> int:
    return state.config.rerank_k if state.config.rerank_k is not None else DEFAULT_RERANK_K


def _rerank_key(state: RunState) -> dict[str, Any]:
    return {"search": state.stages[SEARCH]["key"], "reranker": state.identity("reranker"), "rerank_k": rerank_k(state)}


def _rerank_work(state: RunState) -> Callable[[list[str]], Run]:
    """The reranker's scores for each query's top ``--rerank-k`` candidates; the rest of the
    retriever's list is dropped, as BEIR's reranking evaluation does."""
    k = rerank_k(state)
    split, run = state.split, state.run

    def rerank_shard(shard: list[str]) -> Run:
        candidates = {q: [d for d, _ in sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))[:k]]
                      for q in shard}
        passages = {q: split.corpus.get(docs) for q, docs in candidates.items()}
        with attributed(state.who("reranker"), "rerank"):
            scored = state.c.reranker.rerank({q: split.queries[q] for q in shard}, passages)
        return checked_reranking(scored, candidates, who=state.who("reranker"))

    return rerank_shard


def _rerank(state: RunState, stage: Stage) -> dict[str, Any]:
    shards = state.sharded(stage, _rerank_work(state), "reranking")
    return {"queries": len(state.split.queries), "pairs": sum(len(r) for shard in shards for r in shard.values()),
            "shards": len(shards), "shard_size": state.config.shard_size}


def _load_rerank(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    state.run = state.read_shards(stage, manifest)


# --- answer ---------------------------------------------------------------------------------------


def _answer_key(state: RunState) -> dict[str, Any]:
    return {"search": state.ranking_key(), "read_k": state.read_k(), "reader_fit": state.reader_fit_key,
            "injector_fit": state.injector_fit_key, "injector": state.identity("injector"),
            "reader": state.identity("reader"), "generator": state.generator_identity(),
            "queries": state.dataset_key}


def _answer_work(state: RunState) -> Callable[[list[str]], dict[str, Any]]:
    reader, injector, split, run = state.c.reader, state.c.injector, state.split, state.run
    read_k, inject_dir = state.read_k(), state.inject_dir()

    def answer_shard(shard: list[str]) -> dict[str, Any]:
        injections: dict[str, Injection] = {}
        for qid in shard:
            ranked = sorted((run or {}).get(qid, {}).items(), key=lambda x: -x[1])[:read_k]
            found = split.corpus.get([d for d, _ in ranked]) if ranked else []
            passages = [replace(p, extra={**p.extra, "retrieval_score": score}) for p, (_, score) in zip(found, ranked)]
            with attributed(state.who("injector"), "prepare"):
                injections[qid] = injector.prepare(passages, reader=reader, workdir=inject_dir)
        with attributed(state.who("reader"), "answer"):
            answers = reader.answer({q: split.queries[q] for q in shard}, injections)
        answers = checked_answers(answers, shard, who=state.who("reader"))
        return {"answers": [{"qid": a.qid, "text": a.text, "extra": a.extra} for a in answers],
                "injection_bytes": sum(i.nbytes for i in injections.values()),
                "injection_costs": {q: i.cost for q, i in injections.items() if i.cost}}

    return answer_shard


def _answer(state: RunState, stage: Stage) -> dict[str, Any]:
    shards = state.sharded(stage, _answer_work(state), "answering")
    costs = {q: c for shard in shards for q, c in shard.get("injection_costs", {}).items()}
    return {"shards": len(shards), "shard_size": state.config.shard_size,
            "injection_bytes": sum(shard["injection_bytes"] for shard in shards), **injection_cost_summary(costs)}


def _load_answer(state: RunState, stage: Stage, manifest: dict[str, Any], cached: bool) -> None:
    state.injection_bytes = manifest.get("injection_bytes", 0)
    size = manifest["shard_size"]
    state.answers = [Answer(**a) for i in range(manifest["shards"]) for a in stage.read_shard(i, size)["answers"]]


STAGES: tuple[StageSpec, ...] = (
    StageSpec(AUGMENT, lambda s: s.trains("retriever") and bool(s.c.augmenters), _augment_key, _augment,
              _load_augment),
    StageSpec(FIT, lambda s: s.trains("retriever"), _fit_key, _fit, _load_fit),
    StageSpec(FIT_READER, lambda s: s.trains("reader"), _fit_reader_key, _fit_reader, _load_fit_reader),
    StageSpec(FIT_INJECTOR, lambda s: s.trains("injector"), _fit_injector_key, _fit_injector, _load_fit_injector),
    StageSpec(INDEX, lambda s: s.c.retriever is not None, _index_key, _index, _load_index, lazy=True),
    StageSpec(SEARCH, lambda s: s.c.retriever is not None, _search_key, _search, _load_search),
    StageSpec(RERANK, lambda s: s.c.reranker is not None, _rerank_key, _rerank, _load_rerank,
              shard_work=_rerank_work),
    StageSpec(ANSWER, lambda s: s.c.reader is not None, _answer_key, _answer, _load_answer, shard_work=_answer_work),
)
BY_NAME = {spec.name: spec for spec in STAGES}
