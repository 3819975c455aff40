"""The state of one run while the engine walks its stages: the split, the components, the keys
and manifests of the stages done so far, timings. :meth:`RunState.run_stage` is the one place
a stage is keyed, computed or reused, timed and recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from retbench import progress
from retbench.attribution import ComponentError, attributed, describe
from retbench.engine.cache import Cache, Stage, stage_key
from retbench.component import search_time_params, without_search_time_params
from retbench.engine.config import FIT_ROLES, RunConfig
from retbench.engine.names import INDEX, RERANK, SEARCH
from retbench.engine.stages import BY_NAME, StageSpec
from retbench.errors import ConfigError
from retbench.interfaces import fit_report_problems
from retbench.engine.measure import StageTimer, peak_rss_mb
from retbench.engine.resolve import Components
from retbench.data.types import Answer, DatasetSplit, Run


def load_split(dataset: Any, spec: str, *, workdir: Path, option: str = "--split") -> DatasetSplit:
    """A split or a slice of it (``test[:1000]``): see :mod:`retbench.data.splits`."""
    from retbench.data.splits import load_split as load

    return load(dataset, spec, workdir=workdir, option=option)


def _queries_fingerprint(split: DatasetSplit) -> str:
    digest = hashlib.sha256()
    for qid, text in split.queries.items():
        digest.update(f"{qid}\t{text}\n".encode())
    return digest.hexdigest()


def query_shards(items: list[str], size: int) -> list[list[str]]:
    """The query ids in shards of ``size`` (one empty shard for none)."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


class RunState:
    def __init__(self, config: RunConfig, cache: Cache, components: Components) -> None:
        self.config = config
        self.cache = cache
        self.c = components
        self.timer = StageTimer()
        self.stages: dict[str, dict[str, Any]] = {}
        self.manifests: dict[str, dict[str, Any]] = {}
        self.split: DatasetSplit
        self.trainable: set[str] = set()
        self.train: DatasetSplit
        self.retriever_train: DatasetSplit
        self.train_key: dict[str, Any] | None = None
        self.augment_key: str | None = None
        self.fit_key: str | None = None
        self.reader_fit_key: str | None = None
        self.injector_fit_key: str | None = None
        self.query_encoder_key: str | None = None  # the fit-reader stage that trained the query tower
        self.co_trains = False
        self.index_ready = False
        self.injection_bytes = 0
        self.run: Run | None = None
        self.answers: list[Answer] | None = None
        self.workers: Any = None  # RayWorkers computing generation-bound shards (``--workers``)

    # --- walking ----------------------------------------------------------------------------------

    def walk(self, stages: Iterable[StageSpec]) -> None:
        """Run every stage this run needs, in order; lazy ones wait until asked for."""
        for spec in stages:
            if not spec.lazy and spec.needed(self):
                self.run_stage(spec)

    def require(self, name: str) -> None:
        """A lazy stage's output, made or restored once (the index before a search shard)."""
        if name not in self.stages:
            self.run_stage(BY_NAME[name])

    def key_of(self, name: str) -> str:
        return stage_key(stage=name, **BY_NAME[name].key(self))

    def run_stage(self, spec: StageSpec) -> None:
        """Compute (or reuse) a stage. Its manifest keeps the cost measured when it was computed,
        so a record built from the cache still reports what the work cost."""
        name = spec.name
        stage = self.cache.stage(name, stage_key(stage=name, **spec.key(self)))

        def measured(target: Stage) -> dict[str, Any]:
            start = self.timer.elapsed(name)
            result = spec.compute(self, target)
            return {**result, "seconds": round(self.timer.elapsed(name) - start, 4),
                    "peak_rss_mb": round(peak_rss_mb(), 1)}

        with self.timer.time(name):
            manifest, cached = self.cache.run_stage(stage, measured)
        self.stages[name] = {"key": stage.key, "cached": cached}
        self.manifests[name] = manifest
        progress.note(f"{name}: {'cached' if cached else 'done'}")
        spec.load(self, stage, manifest, cached)

    def sharded(self, stage: Stage, work: Callable[[list[str]], Any], description: str) -> list[Any]:
        """Compute the split's missing query shards (one file each, written atomically); return
        all. With ``--workers`` a stage declaring ``shard_work`` has its missing shards computed
        by the Ray workers first."""
        size = self.config.shard_size
        shards = query_shards(list(self.split.queries), size)
        if self.workers is not None and BY_NAME[stage.name].shard_work is not None:
            missing = [i for i in range(len(shards)) if not stage.shard_path(i, size).is_file()]
            if missing:
                self.workers.shards(stage, missing, size, description)
        results = []
        for index, shard in enumerate(progress.track(shards, description=description)):
            value = stage.resumable_shard(index, size)
            if value is None:
                value = work(shard)
                stage.write_shard(index, size, value)
            results.append(value)
        return results

    @staticmethod
    def read_shards(stage: Stage, manifest: dict[str, Any]) -> Run:
        run: Run = {}
        for index in range(manifest["shards"]):
            run.update(stage.read_shard(index, manifest["shard_size"]))
        return run

    # --- before the stages ------------------------------------------------------------------------

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

    def plan_training(self) -> None:
        """Which of retriever, reader and injector train on ``--fit-split`` (the retriever first;
        the reader, then the injector, on what the trained and indexed retriever returns), and the
        training split; errors before any work when the options cannot be met."""
        config, c = self.config, self.c
        if not config.fit_split:
            if c.injector is not None and getattr(c.injector, "needs_fit", False):
                raise ConfigError(f"injector '{c.injector.name}' must be trained first: give --fit-split "
                                  "(a question split disjoint from --split)")
            return
        parts = dict(zip(FIT_ROLES, (c.retriever, c.reader, c.injector), strict=True))
        trainable = {role for role, part in parts.items() if part is not None and hasattr(part, "fit")}
        if config.fit_roles is not None:
            for role in config.fit_roles:
                if parts[role] is None or not hasattr(parts[role], "fit"):
                    what = (f"this run has no {role}" if parts[role] is None
                            else f"{role} '{parts[role].name}' cannot be trained (no fit method)")
                    raise ConfigError(f"--fit-only {role}: {what}")
            trainable = set(config.fit_roles)
        if not trainable:
            names = " or ".join(n for n in (config.retriever, config.reader) if n)
            raise ConfigError(f"--fit-split given, but {names} cannot be trained (no fit method)")
        self.trainable = trainable
        self.train = load_split(c.dataset, config.fit_split, workdir=self.cache.home / "prepared",
                                option="--fit-split")
        self.retriever_train = self.train
        self.train_key = {"name": self.train.name, "split": self.train.split, "revision": self.train.revision}

    def trains(self, role: str) -> bool:
        return role in self.trainable

    # --- what stages share ------------------------------------------------------------------------

    def identity(self, role: str) -> dict[str, Any] | None:
        item = self.c.described.get(role)
        return None if item is None else {k: item[k] for k in ("name", "version", "params", "fingerprint")
                                          if k in item}

    def augment_identity(self) -> dict[str, Any] | None:
        """The generator that writes training data: ``--augment-generator``, else the run's."""
        return self.identity("augment-generator") or self.identity("generator")

    def generator_identity(self) -> dict[str, Any] | None:
        """The run's generator for stage keys; both generators when training data has its own."""
        answering = self.identity("generator")
        if "augment-generator" not in self.c.described:
            return answering
        return {"answer": answering, "augment": self.augment_identity()}

    def augment_recipe(self) -> str:
        return ",".join(a.name for a in self.c.augmenters)

    def data_generator(self) -> Any:
        """The generator writing training data: the run's, or with ``--workers`` its calls
        split over the Ray workers."""
        generator = self.c.augment_generator
        if self.workers is None or generator is None:
            return generator
        from retbench.engine.workers import PooledGenerator

        return PooledGenerator(generator, self.workers)

    @property
    def generation_cache(self) -> Path:
        """Generated training data (augmenters', SyNeg's negatives) is kept here, outside any one
        stage, keyed by what makes it: a run changing only training settings regenerates nothing."""
        return self.cache.home / "augment" / "shared"

    def who(self, role: str) -> str:
        """The component playing ``role``, its plugin and distribution, for error messages."""
        return describe(role, self.c.described.get(role))

    def retriever_index_identity(self) -> dict[str, Any] | None:
        """The retriever's identity in the fit and index keys (search-time parameters left out)."""
        return without_search_time_params(self.identity("retriever"), self.c.retriever)

    def search_parts(self) -> dict[str, Any]:
        """Key parts for the retriever's search-time parameters; none at their defaults, so the
        keys of runs that do not set them are unchanged."""
        searching = search_time_params(self.c.retriever) if self.c.retriever is not None else {}
        parts: dict[str, Any] = {"search_params": searching} if searching else {}
        if self.query_encoder_key is not None:  # the query tower a reader trained (fit-reader)
            parts["query_encoder"] = self.query_encoder_key
        return parts

    def ranking_key(self) -> str | None:
        """The key of the ranking the reader reads: the reranker's when there is one."""
        return (self.stages.get(RERANK) or self.stages.get(SEARCH) or {}).get("key")

    def index_manifest(self) -> dict[str, Any]:
        """The finished index stage's manifest, also when this run did not need the index."""
        if INDEX in self.manifests:
            return self.manifests[INDEX]
        stage = self.cache.stage(INDEX, self.key_of(INDEX))
        return stage.manifest() if stage.complete else {}

    def read_k(self) -> int:
        if self.config.read_k is not None:
            return self.config.read_k
        return getattr(self.c.reader, "k", 5)

    def inject_dir(self) -> Path:
        """Where the injector keeps artefacts across runs (e.g. per-passage LoRAs)."""
        return self.cache.home / "inject" / stage_key(
            injector=self.identity("injector"), reader=self.identity("reader"), generator=self.generator_identity())

    def fit_component(self, role: str, stage: Stage, train: DatasetSplit, **kwargs: Any) -> dict[str, Any]:
        with attributed(self.who(role), "fit"):
            report = getattr(self.c, role).fit(train, workdir=stage.workdir, **kwargs)
        report = {} if report is None else report
        problems = fit_report_problems(report)
        if problems:
            raise ComponentError(f"{self.who(role)} returned an unusable fit report: {'; '.join(problems)}")
        return {"train": {"name": train.name, "split": train.split, "revision": train.revision,
                          "queries": len(train.queries)},
                "model": str(stage.workdir), **report}

    @staticmethod
    def restore(component: Any, name: str, stage: Stage, cached: bool) -> None:
        if not cached:
            return
        if not hasattr(component, "load_fit"):
            raise ConfigError(f"{type(component).__name__} has fit but no load_fit to reuse a cached model")
        component.load_fit(workdir=stage.workdir)
