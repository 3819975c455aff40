"""``evaluate(config) -> RunRecord``: a run end to end, no printing, no argparse. The components
are resolved and checked, the engine walks the stage table (:mod:`retbench.engine.stages`),
then the metrics are scored and the record written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retbench.attribution import notify
from retbench.engine.cache import Cache, stage_key
from retbench.engine.capabilities import hand_augment_generator
from retbench.engine.config import RunConfig
from retbench.engine.default_fit import with_default_fit_split
from retbench.engine.names import ANSWER, FIT_INJECTOR, FIT_STAGES, INDEX, RERANK, SEARCH, TRAINING_STAGES
from retbench.engine.stages import STAGES
from retbench.engine.state import RunState
from retbench.errors import ConfigError
from retbench.engine.measure import peak_rss_mb
from retbench.metrics.retrieval import evaluated_queries
from retbench.reporting.redaction import redact, redact_command, secrets_of
from retbench.host.manager import RetbenchPluginManager, get_plugin_manager
from retbench.reporting.records import describe_environment, save_record, save_run_record
from retbench.host.registry import collect_registries
from retbench.engine.resolve import make_dataset, resolve
from retbench.metrics.scoring import check_metric_names, metric_names, score
from retbench.data.types import Answer, DatasetSplit, Run, RunRecord

if TYPE_CHECKING:
    from retbench.engine.workers import WorkerPlan

LOCAL_EXECUTOR = {"name": "local"}


def evaluate(
    config: RunConfig,
    *,
    pm: RetbenchPluginManager | None = None,
    cache: Cache | None = None,
    records_dir: str | Path | None = None,
    executor: Mapping[str, Any] | None = None,
    workers: WorkerPlan | None = None,
) -> RunRecord:
    """Run one configuration end to end and return its record (also saved in the cache).
    ``executor`` describes where it ran (``retbench grid --executor``), kept in the record's
    environment; by default ``{"name": "local"}``. ``workers``: Ray actors computing the
    generation-bound work (:mod:`retbench.engine.workers`), named in the environment too."""
    pm = pm or get_plugin_manager()
    cache = cache or Cache()
    registries = collect_registries(pm)
    check_metric_names(config.metrics or (), registries)
    components = resolve(config, registries, pm, fingerprints=False)
    members = getattr(components.dataset, "members", lambda: [])()
    if members:
        return _evaluate_members(config, members, pm=pm, cache=cache, records_dir=records_dir, executor=executor,
                                 workers=workers)
    config = with_default_fit_split(config, components.injector,
                                    getattr(components.dataset, "default_split", "test"))
    secrets = secrets_of([components.dataset, components.retriever, components.reranker, components.reader,
                          components.injector, components.negatives, components.generator, *components.augmenters])
    notify(pm, "retbench_run_start", config=redact(config.to_dict(), secrets))
    state = RunState(config, cache, components)
    state.load()
    components.add_fingerprints()
    split = state.split
    state.plan_training()
    _walk(state, workers)
    run, answers = state.run, state.answers
    names = metric_names(config.metrics, split, registries, retrieval=run is not None,
                         answers=answers is not None)
    scores = score(names, split, run=run, answers=answers, registries=registries, reader=components.reader,
                   read_k=state.read_k() if components.reader is not None else 5)
    cost = _cost(state, run, answers)
    run_id = stage_key(  # the index key is implied by the search key, and may go unvisited
        config=redact(config.to_dict(), secrets),
        stages={k: v["key"] for k, v in state.stages.items() if k != INDEX},
    )
    record = RunRecord(
        run_id=run_id,
        command=redact_command(config.command(), secrets),
        config=redact(config.to_dict(), secrets),
        components=components.described,
        dataset={
            "name": split.name,
            "split": split.split,
            "revision": split.revision,
            "queries": len(split.queries),
            "evaluated_queries": len(evaluated_queries(split.qrels, split.rules))
            if run is not None
            else len(split.answers),
            "documents": len(split.corpus),
            "corpus_fingerprint": split.corpus.fingerprint,
            "rules": vars(split.rules),
            "query_subset": state.query_subset,
        },
        metrics=scores.metrics,
        cost=cost,
        stages=state.stages,
        environment={**describe_environment(pm), "executor": dict(executor or LOCAL_EXECUTOR),
                     **({"workers": workers.describe()} if workers is not None else {})},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        higher_is_better=scores.higher_is_better,
        per_query=scores.per_query,
        training={name: state.manifests[name] for name in TRAINING_STAGES if name in state.manifests},
    )
    save_run_record(record, cache.home / "runs" / run_id, run=run)
    if records_dir is not None:
        save_record(record, Path(records_dir) / split.name, run=None, slug=True)
    notify(pm, "retbench_run_finish", record=record)
    return record


def _walk(state: RunState, plan: WorkerPlan | None) -> None:
    """Every stage, with the Ray workers of ``plan`` (started on first use) when given."""
    if plan is None:
        state.walk(STAGES)
        return
    from retbench.engine.workers import RayWorkers

    state.workers = RayWorkers(plan, state.config, state.cache.home)
    c = state.c
    hand_augment_generator([c.reader, c.injector, c.negatives], state.data_generator())
    try:
        state.walk(STAGES)
    finally:
        state.workers.close()
        state.workers = None
        hand_augment_generator([c.reader, c.injector, c.negatives], c.augment_generator)


def _evaluate_members(config: RunConfig, members: list[str], *, pm: RetbenchPluginManager, cache: Cache,
                      records_dir: str | Path | None, executor: Mapping[str, Any] | None,
                      workers: WorkerPlan | None = None) -> RunRecord:
    """A dataset made of parts (CQADupStack's forums): run each, report the mean of their
    scores (each part weighs the same, whatever its number of queries). Observers see the whole
    run's start and finish around its parts' own pairs."""
    notify(pm, "retbench_run_start", config=redact(config.to_dict()))
    parts = [evaluate(replace(config, dataset=member), pm=pm, cache=cache, executor=executor, workers=workers)
             for member in members]
    first = parts[0]
    names = [n for n in first.metrics if all(n in p.metrics for p in parts)]
    name = config.dataset.partition(":")[0]
    record = RunRecord(
        run_id=stage_key(config=redact(config.to_dict()), parts=[p.run_id for p in parts]),
        command=redact_command(config.command()),
        config=redact(config.to_dict()),
        components=first.components,
        dataset={**first.dataset, "name": name, "revision": stage_key(parts=[p.dataset["revision"] for p in parts]),
                 "queries": sum(p.dataset["queries"] for p in parts),
                 "evaluated_queries": sum(p.dataset["evaluated_queries"] for p in parts),
                 "documents": sum(p.dataset["documents"] for p in parts),
                 "parts": {p.dataset["name"]: p.run_id for p in parts},
                 "rules": {**first.dataset["rules"],
                           "averaging": f"mean over the {len(parts)} parts of each part's mean"}},
        metrics={n: sum(p.metrics[n] for p in parts) / len(parts) for n in names},
        cost={"stage_seconds": {}, "run_seconds": {}, "cached_stages": [],
              "peak_rss_mb": max(p.cost.get("peak_rss_mb", 0) for p in parts),
              "index_bytes": sum(p.cost.get("index_bytes") or 0 for p in parts)},
        stages={f"{p.dataset['name']}/{stage}": info for p in parts for stage, info in p.stages.items()},
        environment=first.environment,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        higher_is_better=first.higher_is_better,
        per_query={f"{p.dataset['name']}/{q}": v for p in parts for q, v in p.per_query.items()},
    )
    save_run_record(record, cache.home / "runs" / record.run_id, run=None)
    if records_dir is not None:
        save_record(record, Path(records_dir) / name, run=None, slug=True)
    notify(pm, "retbench_run_finish", record=record)
    return record


def _cost(state: RunState, run: Run | None, answers: list[Answer] | None = None) -> dict[str, Any]:
    """Cost of the work behind this record: per-stage seconds and peak memory as measured
    when each stage was computed (``cached_stages`` says which were reused), plus this run's
    own wall time per stage."""
    manifests = dict(state.manifests)
    if run is not None:
        manifests[INDEX] = state.index_manifest()
    seconds = {name: m.get("seconds") for name, m in manifests.items() if m}
    queries = len(state.split.queries)
    peaks = [m["peak_rss_mb"] for m in manifests.values() if m.get("peak_rss_mb")]
    cost: dict[str, Any] = {
        "stage_seconds": seconds,
        "run_seconds": {k: round(v, 4) for k, v in state.timer.seconds.items()},
        "cached_stages": sorted(name for name, s in state.stages.items() if s["cached"]),
        "peak_rss_mb": max(peaks) if peaks else round(peak_rss_mb(), 1),
    }
    if run is not None:
        search_seconds = seconds.get(SEARCH)
        cost["queries_per_second"] = round(queries / search_seconds, 2) if search_seconds else None
        cost["index_bytes"] = manifests[INDEX].get("bytes")
    if RERANK in manifests:
        rerank = manifests[RERANK]
        cost["rerank_pairs_per_second"] = (round(rerank["pairs"] / rerank["seconds"], 2)
                                           if rerank.get("seconds") else None)
    if state.c.reader is not None:
        cost["injection_bytes"] = state.injection_bytes
        answer_seconds = seconds.get(ANSWER)
        cost["seconds_per_question"] = round(answer_seconds / queries, 4) if answer_seconds and queries else None
        for key in ("tokens_in", "tokens_out"):  # reported by generative readers in Answer.extra
            counts = [a.extra[key] for a in answers or [] if key in a.extra]
            if counts:
                cost[f"{key}_per_question"] = round(sum(counts) / len(counts), 1)
        cost.update(_injection_cost(manifests, answers or [], queries))
    return cost


def _injection_cost(manifests: dict[str, dict[str, Any]], answers: list[Answer], queries: int) -> dict[str, Any]:
    """The comparison the PRAG / DyPRAG papers make: online seconds per question by step
    (the injector's, e.g. encode / translate, plus the reader's ``Answer.extra["online_seconds"]``,
    e.g. merge / generate), offline seconds per prepared passage, and the bytes stored
    (per-passage artefacts plus a trained injector's model)."""
    answer = manifests.get(ANSWER, {})
    online = dict(answer.get("injection_online_seconds", {}))
    for a in answers:
        for step, seconds in a.extra.get("online_seconds", {}).items():
            online[step] = online.get(step, 0.0) + seconds / max(queries, 1)
    cost: dict[str, Any] = {}
    if online:
        cost["online_seconds"] = {step: round(seconds, 4) for step, seconds in online.items()}
        cost["online_seconds_per_question"] = round(sum(online.values()), 4)
    artefacts = answer.get("injection_artefacts")
    if artefacts:
        cost["offline_seconds_per_passage"] = artefacts["offline_seconds_per_passage"]
        cost["prepared_passages"] = artefacts["passages"]
    stored = (artefacts or {}).get("bytes", 0) + manifests.get(FIT_INJECTOR, {}).get("bytes", 0)
    if artefacts or FIT_INJECTOR in manifests:
        cost["storage_bytes"] = stored
    return cost


def train_only(
    config: RunConfig, *, pm: RetbenchPluginManager | None = None, cache: Cache | None = None
) -> dict[str, Any]:
    """Run the fit stages alone (``retbench train``); returns where each model is cached."""
    pm = pm or get_plugin_manager()
    cache = cache or Cache()
    components = resolve(config, collect_registries(pm), pm, fingerprints=False)
    config = with_default_fit_split(config, components.injector,
                                    getattr(components.dataset, "default_split", "test"))
    if not config.fit_split:
        raise ConfigError("training needs --fit-split")
    state = RunState(config, cache, components)
    state.load()
    components.add_fingerprints()
    state.plan_training()
    state.walk(spec for spec in STAGES if spec.name in TRAINING_STAGES)
    return {
        name: {"key": info["key"], "workdir": str(cache.stage(name, info["key"]).workdir),
               "cached": info["cached"], "seconds": state.timer.seconds.get(name)}
        for name, info in state.stages.items() if name in FIT_STAGES
    }


def prepare_dataset(
    dataset: str,
    *,
    split: str | None,
    data_dir: str | None = None,
    pm: RetbenchPluginManager | None = None,
    cache: Cache | None = None,
) -> DatasetSplit:
    """Load (and prepare into the cache) one split: ``retbench datasets prepare``."""
    pm = pm or get_plugin_manager()
    cache = cache or Cache()
    component = make_dataset(dataset, data_dir=data_dir, params={},
                              registries=collect_registries(pm), pm=pm, described={})
    return component.load(split or getattr(component, "default_split", "test"), workdir=cache.home / "prepared")
