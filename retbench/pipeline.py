"""``evaluate(config) -> RunRecord``: all orchestration of a run; no printing, no argparse.

Stages: load -> [fit] -> index -> search -> [rerank] -> retrieval metrics -> [prepare + answer] ->
answer metrics -> cost -> RunRecord. Each stage has a key (see :mod:`retbench.cache`); finished stages
are reused, search and answer stages resume shard by shard.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from retbench import progress
from retbench.attribution import attributed, describe, notify
from retbench.augment import mix
from retbench.capabilities import hand_generation_cache, wants_augment_generator
from retbench.cache import Cache, Stage, atomic_write_json, directory_bytes, stage_key
from retbench.component import search_time_params, without_search_time_params
from retbench.config import FIT_ROLES, RunConfig
from retbench.default_fit import with_default_fit_split
from retbench.errors import ConfigError
from retbench.metrics.cost import StageTimer, injection_cost_summary, peak_rss_mb
from retbench.metrics.retrieval import evaluated_queries, remove_self_hits
from retbench.outputs import redact, redact_command, secrets_of
from retbench.plugins import RetbenchPluginManager, get_plugin_manager
from retbench.record import describe_environment, save_record, save_run_record
from retbench.results import checked_answers, checked_reranking, checked_run
from retbench.registry import collect_registries
from retbench.resolve import Components, make_dataset, resolve
from retbench.scoring import check_metric_names, metric_names, score
from retbench.types import Answer, DatasetSplit, Injection, Run, RunRecord


DEFAULT_RERANK_K = 100


def _identity(described: dict[str, dict[str, Any]], role: str) -> dict[str, Any] | None:
    item = described.get(role)
    return None if item is None else {k: item[k] for k in ("name", "version", "params", "fingerprint")
                                      if k in item}


def _queries_fingerprint(split: DatasetSplit) -> str:
    digest = hashlib.sha256()
    for qid, text in split.queries.items():
        digest.update(f"{qid}\t{text}\n".encode())
    return digest.hexdigest()


def load_split(dataset: Any, spec: str, *, workdir: Path, option: str = "--split") -> DatasetSplit:
    """A split or a slice of it (``test[:1000]``): see :mod:`retbench.splits`."""
    from retbench.splits import load_split as load

    return load(dataset, spec, workdir=workdir, option=option)


def _shards(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _run_sharded(stage: Stage, qids: list[str], size: int, work, description: str) -> list[Any]:
    """Compute missing shards (one file each, written atomically), return all of them."""
    shards = _shards(qids, size)
    results = []
    for index, shard in enumerate(progress.track(shards, description=description)):
        value = stage.resumable_shard(index, size)
        if value is not None:
            results.append(value)
            continue
        value = work(shard)
        stage.write_shard(index, size, value)
        results.append(value)
    return results


class _Run:
    """The state of one evaluation while it runs (split, components, stage keys, timings)."""

    def __init__(self, config: RunConfig, cache: Cache, components: Components) -> None:
        self.config = config
        self.cache = cache
        self.c = components
        self.timer = StageTimer()
        self.stages: dict[str, dict[str, Any]] = {}
        self.manifests: dict[str, dict[str, Any]] = {}
        self.split: DatasetSplit
        self.fit_key: str | None = None
        self.reader_fit_key: str | None = None
        self.injector_fit_key: str | None = None
        self.query_encoder_key: str | None = None  # the fit-reader stage that trained the query tower
        self.index_ready = False
        self.injection_bytes = 0

    def stage(self, name: str, compute, **key_parts: Any) -> tuple[Stage, dict[str, Any]]:
        """Run (or reuse) a stage. Its manifest keeps the cost measured when it was computed,
        so a record built from the cache still reports what the work cost."""
        stage = self.cache.stage(name, stage_key(stage=name, **key_parts))

        def measured(target: Stage) -> dict[str, Any]:
            start = self.timer.elapsed(name)
            result = compute(target)
            return {**result, "seconds": round(self.timer.elapsed(name) - start, 4),
                    "peak_rss_mb": round(peak_rss_mb(), 1)}

        with self.timer.time(name):
            manifest, cached = self.cache.run_stage(stage, measured)
        self.stages[name] = {"key": stage.key, "cached": cached}
        self.manifests[name] = manifest
        progress.note(f"{name}: {'cached' if cached else 'done'}")
        return stage, manifest

    def augment_identity(self) -> dict[str, Any] | None:
        """The generator that writes training data: ``--augment-generator``, else the run's."""
        return _identity(self.c.described, "augment-generator") or _identity(self.c.described, "generator")

    def generator_identity(self) -> dict[str, Any] | None:
        """The run's generator for stage keys; both generators when training data has its own."""
        answering = _identity(self.c.described, "generator")
        if "augment-generator" not in self.c.described:
            return answering
        return {"answer": answering, "augment": self.augment_identity()}

    def load(self) -> None:
        with self.timer.time("load"):
            split_name = self.config.split or getattr(self.c.dataset, "default_split", "test")
            split = load_split(self.c.dataset, split_name, workdir=self.cache.home / "prepared")
        self.split, self.query_subset = split.subset(
            limit=self.config.limit, sample=self.config.sample, per_type=self.config.per_type,
            seed=self.config.seed)
        self.dataset_key = {
            "name": self.split.name,
            "split": self.split.split,
            "revision": self.split.revision,
            "corpus": self.split.corpus.fingerprint,
            "queries": _queries_fingerprint(self.split),
        }

    def fit(self) -> None:
        """Train whichever of retriever, reader and injector can be trained (``--fit-split``).

        The retriever trains first; the reader, then the injector (e.g. DyPRAG's translator),
        train afterwards on what the (trained and indexed) retriever returns for the training
        questions.
        """
        if not self.config.fit_split:
            if self.c.injector is not None and getattr(self.c.injector, "needs_fit", False):
                raise ConfigError(f"injector '{self.c.injector.name}' must be trained first: give --fit-split "
                                  "(a question split disjoint from --split)")
            return
        parts = dict(zip(FIT_ROLES, (self.c.retriever, self.c.reader, self.c.injector), strict=True))
        trainable = [c for c in parts.values() if c is not None and hasattr(c, "fit")]
        if self.config.fit_roles is not None:
            for role in self.config.fit_roles:
                if parts[role] is None or not hasattr(parts[role], "fit"):
                    what = (f"this run has no {role}" if parts[role] is None
                            else f"{role} '{parts[role].name}' cannot be trained (no fit method)")
                    raise ConfigError(f"--fit-only {role}: {what}")
            trainable = [parts[r] for r in self.config.fit_roles]
        if not trainable:
            names = " or ".join(n for n in (self.config.retriever, self.config.reader) if n)
            raise ConfigError(f"--fit-split given, but {names} cannot be trained (no fit method)")
        train = load_split(self.c.dataset, self.config.fit_split, workdir=self.cache.home / "prepared",
                           option="--fit-split")
        train_key = {"name": train.name, "split": train.split, "revision": train.revision}
        if self.c.retriever in trainable:
            retriever_train, augment_key = self.augmented(train)
            hand_generation_cache([self.c.negatives], self.generation_cache)
            stage, _ = self.stage(
                "fit",
                lambda stage: self._fit(self.c.retriever, stage, retriever_train, negatives=self.c.negatives,
                                        seed=self.config.seed),
                retriever=self.retriever_index_identity(),
                negatives=_identity(self.c.described, "negatives"),
                train=train_key,
                augment=augment_key,
                augment_ratio=self.config.augment_ratio,
                seed=self.config.seed,
                **({"generator": self.augment_identity()} if wants_augment_generator([self.c.negatives]) else {}),
            )
            self._restore(self.c.retriever, "fit", stage)
            self.fit_key = stage.key
        if self.c.reader in trainable:
            # a reader that trains the retriever's query tower (REALM / ORQA) changes what the
            # run's searches return: the search key then names the reader's fit
            trains_queries = getattr(self.c.reader, "trains_query_encoder", None)
            with attributed(self.who("reader"), "fit"):
                co_trains = bool(trains_queries and trains_queries(self.c.retriever))

            def fit_reader(stage: Stage) -> dict[str, Any]:
                if self.c.retriever is not None:
                    self.ensure_index()
                return self._fit(self.c.reader, stage, train, retriever=self.c.retriever)

            stage, _ = self.stage(
                "fit-reader",
                fit_reader,
                reader=_identity(self.c.described, "reader"),
                generator=self.generator_identity(),
                index=self.index_key() if self.c.retriever is not None else None,
                **self.search_parts(),
                train=train_key,
                seed=self.config.seed,
                **({"query_encoder": True} if co_trains else {}),
            )
            self._restore(self.c.reader, "fit-reader", stage)
            self.reader_fit_key = stage.key
            if co_trains:
                self.c.retriever.use_query_encoder(self.c.reader.fitted_query_encoder_)
                self.query_encoder_key = stage.key
        if self.c.injector in trainable:

            def fit_injector(stage: Stage) -> dict[str, Any]:
                if self.c.retriever is not None:
                    self.ensure_index()
                return self._fit(self.c.injector, stage, train, retriever=self.c.retriever, reader=self.c.reader,
                                 inject_dir=self.inject_dir(), seed=self.config.seed, k=self.read_k())

            stage, _ = self.stage(
                "fit-injector",
                fit_injector,
                injector=_identity(self.c.described, "injector"),
                reader=_identity(self.c.described, "reader"),
                generator=self.generator_identity(),
                index=self.index_key() if self.c.retriever is not None else None,
                **self.search_parts(),
                read_k=self.read_k(),
                train=train_key,
                seed=self.config.seed,
            )
            self._restore(self.c.injector, "fit-injector", stage)
            self.injector_fit_key = stage.key

    def augmented(self, train: DatasetSplit) -> tuple[DatasetSplit, str | None]:
        """``train`` with the augmenters' synthetic items mixed in (``--augment``), and the key
        of the cached augment stage; ``train`` itself when there are no augmenters."""
        if not self.c.augmenters:
            return train, None
        recipe = ",".join(a.name for a in self.c.augmenters)
        shared = self.generation_cache

        def compute(stage: Stage) -> dict[str, Any]:
            items, counts = [], {}
            for augmenter in self.c.augmenters:
                with attributed(self.who(f"augmenter:{augmenter.name}"), "augment"):
                    made = augmenter.augment(train.corpus, generator=self.c.augment_generator, workdir=shared)
                counts[augmenter.name] = {"items": len(made), **getattr(augmenter, "last_counts_", {}),
                                          **({"prompts": augmenter.last_prompts_}
                                             if getattr(augmenter, "last_prompts_", None) else {})}
                items += made
            atomic_write_json(stage.workdir / "items.json", items)
            return {"recipe": recipe, "items": len(items), "counts": counts, "generator": self.augment_identity()}

        stage, _ = self.stage(
            "augment", compute,
            augmenters=[_identity(self.c.described, f"augmenter:{a.name}") for a in self.c.augmenters],
            generator=self.augment_identity(),
            corpus=train.corpus.fingerprint,
            seed=self.config.seed,
        )
        items = json.loads((stage.workdir / "items.json").read_text())
        mixed = mix(train, items, recipe=recipe, ratio=self.config.augment_ratio, seed=self.config.seed)
        synthetic = len(mixed.queries) - len(train.queries)
        self.manifests["augment"] = {**self.manifests["augment"], "mix": {
            "real": len(train.queries), "synthetic": synthetic, "augment_ratio": self.config.augment_ratio,
            "synthetic_per_real": round(synthetic / len(train.queries), 4) if train.queries else None}}
        return mixed, stage.key

    @property
    def generation_cache(self) -> Path:
        """Generated training data (augmenters', SyNeg's negatives) is kept here, outside any one
        stage, keyed by what makes it: a run changing only training settings regenerates nothing."""
        return self.cache.home / "augment" / "shared"

    def _fit(self, component: Any, stage: Stage, train: DatasetSplit, **kwargs: Any) -> dict[str, Any]:
        role = next(r for r in ("retriever", "reader", "injector") if getattr(self.c, r) is component)
        with attributed(self.who(role), "fit"):
            report = component.fit(train, workdir=stage.workdir, **kwargs) or {}
        return {"train": {"name": train.name, "split": train.split, "revision": train.revision,
                          "queries": len(train.queries)},
                "model": str(stage.workdir), **report}

    def _restore(self, component: Any, name: str, stage: Stage) -> None:
        if not self.stages[name]["cached"]:
            return
        if not hasattr(component, "load_fit"):
            raise ConfigError(f"{type(component).__name__} has fit but no load_fit to reuse a cached model")
        component.load_fit(workdir=stage.workdir)

    def ensure_index(self) -> None:
        """Make the retriever searchable: build its index or restore the cached one."""
        if self.index_ready:
            return
        retriever = self.c.retriever
        corpus = self.split.corpus

        def compute(stage: Stage) -> dict[str, Any]:
            with attributed(self.who("retriever"), "index"):
                retriever.index(corpus, workdir=stage.workdir)
            self.index_ready = True
            return {"documents": len(corpus), "bytes": directory_bytes(stage.workdir)}

        stage, _ = self.stage("index", compute, **self.index_parts())
        if not self.index_ready:
            with self.timer.time("index"), attributed(self.who("retriever"), "load_index"):
                if hasattr(retriever, "load_index"):
                    retriever.load_index(workdir=stage.workdir)
                else:
                    retriever.index(corpus, workdir=Path(tempfile.mkdtemp(prefix="retbench-")))
            self.index_ready = True

    def who(self, role: str) -> str:
        """The component playing ``role``, its plugin and distribution, for error messages."""
        return describe(role, self.c.described.get(role))

    def retriever_index_identity(self) -> dict[str, Any] | None:
        """The retriever's identity in the fit and index keys (search-time parameters left out)."""
        return without_search_time_params(_identity(self.c.described, "retriever"), self.c.retriever)

    def index_parts(self) -> dict[str, Any]:
        return {
            "retriever": self.retriever_index_identity(),
            "fit": self.fit_key,
            "corpus": self.split.corpus.fingerprint,
        }

    def search_parts(self) -> dict[str, Any]:
        """Key parts for the retriever's search-time parameters; none at their defaults, so the
        keys of runs that do not set them are unchanged."""
        searching = search_time_params(self.c.retriever) if self.c.retriever is not None else {}
        parts: dict[str, Any] = {"search_params": searching} if searching else {}
        if self.query_encoder_key is not None:  # the query tower a reader trained (fit-reader)
            parts["query_encoder"] = self.query_encoder_key
        return parts

    def index_key(self) -> str:
        return stage_key(stage="index", **self.index_parts())

    def index_manifest(self) -> dict[str, Any]:
        """The finished index stage's manifest, also when this run did not need the index."""
        if "index" in self.manifests:
            return self.manifests["index"]
        stage = self.cache.stage("index", self.index_key())
        return stage.manifest() if stage.complete else {}

    def search(self) -> Run:
        if len(self.split.corpus) == 0:
            raise ConfigError(
                f"dataset '{self.split.name}' has no passage corpus on disk, so nothing can be retrieved "
                "(a reader can still run closed-book without --retriever); see the dataset's documentation "
                "in `retbench datasets list`")
        rules = self.split.rules
        k_search = self.config.k + 1 if rules.ignore_identical_ids else self.config.k
        qids = list(self.split.queries)

        def search_shard(shard: list[str]) -> Run:
            self.ensure_index()
            with attributed(self.who("retriever"), "search"):
                found = self.c.retriever.search({q: self.split.queries[q] for q in shard}, k=k_search)
            return checked_run(found, shard, k=k_search, corpus=self.split.corpus, who=self.who("retriever"),
                               self_hits=rules.ignore_identical_ids)

        def compute(stage: Stage) -> dict[str, Any]:
            size = self.config.shard_size
            shards = _run_sharded(stage, qids, size, search_shard, "searching")
            return {"queries": len(qids), "shards": len(shards), "shard_size": size}

        stage, manifest = self.stage(
            "search", compute, index=self.index_key(), queries=self.dataset_key, k=k_search,
            **self.search_parts(),
        )
        run: Run = {}
        for index in range(manifest["shards"]):
            run.update(stage.read_shard(index, manifest["shard_size"]))
        if rules.ignore_identical_ids:
            run = remove_self_hits(run, k=self.config.k)
        return run

    def rerank_k(self) -> int:
        return self.config.rerank_k if self.config.rerank_k is not None else DEFAULT_RERANK_K

    def rerank(self, run: Run) -> Run:
        """The reranker's scores for each query's top ``--rerank-k`` candidates; the rest of the
        retriever's list is dropped, as BEIR's reranking evaluation does."""
        k = self.rerank_k()
        qids = list(self.split.queries)

        def rerank_shard(shard: list[str]) -> Run:
            candidates = {q: [d for d, _ in sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))[:k]]
                          for q in shard}
            passages = {q: self.split.corpus.get(docs) for q, docs in candidates.items()}
            with attributed(self.who("reranker"), "rerank"):
                scored = self.c.reranker.rerank({q: self.split.queries[q] for q in shard}, passages)
            return checked_reranking(scored, candidates, who=self.who("reranker"))

        def compute(stage: Stage) -> dict[str, Any]:
            size = self.config.shard_size
            shards = _run_sharded(stage, qids, size, rerank_shard, "reranking")
            return {"queries": len(qids), "pairs": sum(len(r) for s in shards for r in s.values()),
                    "shards": len(shards), "shard_size": size}

        stage, manifest = self.stage("rerank", compute, search=self.stages["search"]["key"],
                                     reranker=_identity(self.c.described, "reranker"), rerank_k=k)
        reranked: Run = {}
        for index in range(manifest["shards"]):
            reranked.update(stage.read_shard(index, manifest["shard_size"]))
        return reranked

    def ranking_key(self) -> str | None:
        """The key of the ranking the reader reads: the reranker's when there is one."""
        return (self.stages.get("rerank") or self.stages.get("search") or {}).get("key")

    def read_k(self) -> int:
        if self.config.read_k is not None:
            return self.config.read_k
        return getattr(self.c.reader, "k", 5)

    def inject_dir(self) -> Path:
        """Where the injector keeps artefacts across runs (e.g. per-passage LoRAs)."""
        return self.cache.home / "inject" / stage_key(
            injector=_identity(self.c.described, "injector"),
            reader=_identity(self.c.described, "reader"),
            generator=self.generator_identity(),
        )

    def answer(self, run: Run | None) -> list[Answer]:
        reader, injector = self.c.reader, self.c.injector
        read_k = self.read_k()
        inject_dir = self.inject_dir()

        def answer_shard(shard: list[str]) -> dict[str, Any]:
            injections: dict[str, Injection] = {}
            for qid in shard:
                ranked = sorted((run or {}).get(qid, {}).items(), key=lambda x: -x[1])[:read_k]
                found = self.split.corpus.get([d for d, _ in ranked]) if ranked else []
                passages = [replace(p, extra={**p.extra, "retrieval_score": score})
                            for p, (_, score) in zip(found, ranked)]
                with attributed(self.who("injector"), "prepare"):
                    injections[qid] = injector.prepare(passages, reader=reader, workdir=inject_dir)
            with attributed(self.who("reader"), "answer"):
                answers = reader.answer({q: self.split.queries[q] for q in shard}, injections)
            answers = checked_answers(answers, shard, who=self.who("reader"))
            return {"answers": [{"qid": a.qid, "text": a.text, "extra": a.extra} for a in answers],
                    "injection_bytes": sum(i.nbytes for i in injections.values()),
                    "injection_costs": {q: i.cost for q, i in injections.items() if i.cost}}

        def compute(stage: Stage) -> dict[str, Any]:
            shards = _run_sharded(
                stage, list(self.split.queries), self.config.shard_size, answer_shard, "answering"
            )
            costs = {q: c for shard in shards for q, c in shard.get("injection_costs", {}).items()}
            return {"shards": len(shards), "shard_size": self.config.shard_size,
                    "injection_bytes": sum(shard["injection_bytes"] for shard in shards),
                    **injection_cost_summary(costs)}

        stage, manifest = self.stage(
            "answer",
            compute,
            search=self.ranking_key(),
            read_k=read_k,
            reader_fit=self.reader_fit_key,
            injector_fit=self.injector_fit_key,
            injector=_identity(self.c.described, "injector"),
            reader=_identity(self.c.described, "reader"),
            generator=self.generator_identity(),
            queries=self.dataset_key,
        )
        self.injection_bytes = manifest.get("injection_bytes", 0)
        size = manifest["shard_size"]
        return [Answer(**a) for i in range(manifest["shards"]) for a in stage.read_shard(i, size)["answers"]]


def evaluate(
    config: RunConfig,
    *,
    pm: RetbenchPluginManager | None = None,
    cache: Cache | None = None,
    records_dir: str | Path | None = None,
) -> RunRecord:
    """Run one configuration end to end and return its record (also saved in the cache)."""
    pm = pm or get_plugin_manager()
    cache = cache or Cache()
    registries = collect_registries(pm)
    check_metric_names(config.metrics or (), registries)
    components = resolve(config, registries, pm, fingerprints=False)
    members = getattr(components.dataset, "members", lambda: [])()
    if members:
        return _evaluate_members(config, members, pm=pm, cache=cache, records_dir=records_dir)
    config = with_default_fit_split(config, components.injector,
                                    getattr(components.dataset, "default_split", "test"))
    secrets = secrets_of([components.dataset, components.retriever, components.reranker, components.reader,
                          components.injector, components.negatives, components.generator, *components.augmenters])
    notify(pm, "retbench_run_start", config=redact(config.to_dict(), secrets))
    state = _Run(config, cache, components)
    state.load()
    components.add_fingerprints()
    split = state.split
    state.fit()
    run = state.search() if components.retriever is not None else None
    if components.reranker is not None:
        run = state.rerank(run)
    answers = state.answer(run) if components.reader is not None else None
    names = metric_names(config.metrics, split, registries, retrieval=run is not None,
                         answers=answers is not None)
    scores = score(names, split, run=run, answers=answers, registries=registries, reader=components.reader,
                   read_k=state.read_k() if components.reader is not None else 5)
    cost = _cost(state, run, answers)
    run_id = stage_key(  # the index key is implied by the search key, and may go unvisited
        config=redact(config.to_dict(), secrets),
        stages={k: v["key"] for k, v in state.stages.items() if k != "index"},
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
        environment=describe_environment(pm),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        higher_is_better=scores.higher_is_better,
        per_query=scores.per_query,
        training={name: state.manifests[name] for name in ("augment", "fit", "fit-reader", "fit-injector")
                  if name in state.manifests},
    )
    save_run_record(record, cache.home / "runs" / run_id, run=run)
    if records_dir is not None:
        save_record(record, Path(records_dir) / split.name, run=None, slug=True)
    notify(pm, "retbench_run_finish", record=record)
    return record


def _evaluate_members(config: RunConfig, members: list[str], *, pm: RetbenchPluginManager, cache: Cache,
                      records_dir: str | Path | None) -> RunRecord:
    """A dataset made of parts (CQADupStack's forums): run each, report the mean of their
    scores (each part weighs the same, whatever its number of queries). Observers see the whole
    run's start and finish around its parts' own pairs."""
    notify(pm, "retbench_run_start", config=redact(config.to_dict()))
    parts = [evaluate(replace(config, dataset=member), pm=pm, cache=cache) for member in members]
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


def _cost(state: _Run, run: Run | None, answers: list[Answer] | None = None) -> dict[str, Any]:
    """Cost of the work behind this record: per-stage seconds and peak memory as measured
    when each stage was computed (``cached_stages`` says which were reused), plus this run's
    own wall time per stage."""
    manifests = dict(state.manifests)
    if run is not None:
        manifests["index"] = state.index_manifest()
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
        search_seconds = seconds.get("search")
        cost["queries_per_second"] = round(queries / search_seconds, 2) if search_seconds else None
        cost["index_bytes"] = manifests["index"].get("bytes")
    if "rerank" in manifests:
        rerank = manifests["rerank"]
        cost["rerank_pairs_per_second"] = (round(rerank["pairs"] / rerank["seconds"], 2)
                                           if rerank.get("seconds") else None)
    if state.c.reader is not None:
        cost["injection_bytes"] = state.injection_bytes
        answer_seconds = seconds.get("answer")
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
    answer = manifests.get("answer", {})
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
    stored = (artefacts or {}).get("bytes", 0) + manifests.get("fit-injector", {}).get("bytes", 0)
    if artefacts or "fit-injector" in manifests:
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
    state = _Run(config, cache, components)
    state.load()
    components.add_fingerprints()
    state.fit()
    return {
        name: {"key": info["key"], "workdir": str(cache.stage(name, info["key"]).workdir),
               "cached": info["cached"], "seconds": state.timer.seconds.get(name)}
        for name, info in state.stages.items() if name.startswith("fit")
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
