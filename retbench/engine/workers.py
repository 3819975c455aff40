"""One run's generation-bound work fanned out over Ray actors: ``retbench run --workers N``.

Each actor holds its own copy of the run's components, built from the run's configuration and
the same plugins (``--plugins-dir``, ``--block-plugin``), and opens the same stage cache (on a
multi-node cluster a shared filesystem, docs/scale.md). Two kinds of work go to the actors:

* **query shards** of the stages that declare ``shard_work`` (rerank and answer: rerankers,
  RAG readers, PRAG's per-passage LoRA, DyPRAG's translated parameters). An actor restores
  every earlier stage from the cache and never computes one (an earlier stage missing there
  is an error naming it), computes the shards it is handed one at a time and writes each where
  the local run writes it. The driver then reads them as it reads an interrupted run's shards,
  so resume, the stage's manifest and its key are unchanged;
* **the training-data generator's calls** (DRAMA's augmenters, SyNeg, PRAG's QA augmentation):
  each ``generate`` / ``loglikelihood`` call's prompts are split into one contiguous part per
  actor and the answers joined in order; the components keep writing their own caches.

Nothing that names a stage output depends on the number of workers. Greedy generation gives
the local run's text; a sampled one is seeded per call, so each actor's part is seeded alike
and the text can differ from a local run's. The record's environment names the workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retbench import progress
from retbench.component import params_of
from retbench.engine.cache import Cache, Overwrite, Stage
from retbench.engine.config import RunConfig
from retbench.engine.executors import PluginSource, forwarded_environment, ray_cluster, ray_options
from retbench.errors import ConfigError, RetbenchError


@dataclass(frozen=True)
class WorkerPlan:
    """How many actors, on which cluster (a local one when ``address`` is None), each with
    which Ray resources (``cpu`` also sets its torch / OpenMP threads)."""

    workers: int
    address: str | None = None
    resources: Mapping[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    plugins: PluginSource = PluginSource()

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")

    @property
    def threads(self) -> int:
        return max(1, int(self.resources.get("cpu", 1)))

    def describe(self) -> dict[str, Any]:
        return {"name": "ray", "workers": self.workers, "address": self.address or "local",
                "resources": dict(self.resources)}


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous runs whose lengths differ by at most one (empty ones dropped)."""
    size, extra = divmod(len(items), parts)
    runs, start = [], 0
    for part in range(parts):
        end = start + size + (part < extra)
        if end > start:
            runs.append(list(items[start:end]))
        start = end
    return runs


class StageWorker:
    """A Ray actor's state: the run's components, and the run walked up to the stage it serves."""

    def __init__(self, config: RunConfig, plugins: PluginSource, cache_home: str, threads: int) -> None:
        from retbench.engine.resolve import resolve
        from retbench.host.manager import get_plugin_manager
        from retbench.host.registry import collect_registries

        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(threads)
        self.config = config
        self.pm = get_plugin_manager(block=plugins.block, plugins_dir=plugins.plugins_dir)
        self.cache = Cache(cache_home, overwrite=Overwrite.NEVER)
        self.components = resolve(config, collect_registries(self.pm), self.pm, fingerprints=False)
        self.state: Any = None
        self.walked = 0

    def _state_before(self, name: str) -> Any:
        """The run with every stage before ``name`` restored from the cache."""
        from retbench.engine.stages import STAGES
        from retbench.engine.state import RunState

        if self.state is None:
            self.state = RunState(self.config, self.cache, self.components)
            self.state.load()
            self.components.add_fingerprints()
            self.state.plan_training()
        target = next(i for i, spec in enumerate(STAGES) if spec.name == name)
        if target > self.walked:
            self.state.walk(STAGES[self.walked : target])
            self.walked = target
        return self.state

    def shard(self, name: str, key: str, path: str, index: int, size: int) -> str | None:
        """Compute and write one query shard of stage ``name``; the error that stopped it, or None."""
        from retbench.engine.stages import BY_NAME
        from retbench.engine.state import query_shards

        try:
            state = self._state_before(name)
            stage = Stage(self.cache.home, name, key, path=Path(path))
            shard = query_shards(list(state.split.queries), size)[index]
            stage.write_shard(index, size, BY_NAME[name].shard_work(state)(shard))
            return None
        except RetbenchError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - reported by the driver as the run's error
            return f"{type(exc).__name__}: {exc}"

    def generate(self, prompts: list[str], kwargs: dict[str, Any]) -> tuple[list[str], list[dict[str, int]]]:
        generator = self.components.augment_generator
        texts = generator.generate(prompts, **kwargs)
        return texts, list(getattr(generator, "last_usage_", None) or [])

    def loglikelihood(self, contexts: list[str], continuations: list[str]) -> list[float]:
        return list(self.components.augment_generator.loglikelihood(contexts, continuations))


class PooledGenerator:
    """The run's training-data generator with each call's prompts split over the actors. It
    answers for the generator it stands for (name, parameters, fingerprint, capabilities), so
    every cache key a component derives from it is unchanged."""

    def __init__(self, generator: Any, workers: RayWorkers) -> None:
        self._generator = generator
        self._workers = workers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)

    def get_params(self) -> dict[str, Any]:
        return params_of(self._generator)

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> list[str]:
        results = self._workers.map("generate", [(part, kwargs) for part in split_evenly(list(prompts),
                                                                                       self._workers.plan.workers)])
        self.last_usage_ = [u for _, usage in results for u in usage]
        return [text for texts, _ in results for text in texts]

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        pairs = list(zip(contexts, continuations, strict=True))
        parts = split_evenly(pairs, self._workers.plan.workers)
        results = self._workers.map("loglikelihood", [([c for c, _ in p], [t for _, t in p]) for p in parts])
        return [score for part in results for score in part]


class RayWorkers:
    """The driver's handle on the actors, started on first use and stopped by :meth:`close`."""

    def __init__(self, plan: WorkerPlan, config: RunConfig, cache_home: Path) -> None:
        self.plan = plan
        self.config = config
        self.cache_home = cache_home
        self._stack = contextlib.ExitStack()
        self._ray: Any = None
        self._actors: list[Any] = []

    def actors(self) -> list[Any]:
        if not self._actors:
            self._ray = self._stack.enter_context(ray_cluster(self.plan.address))
            threads = str(self.plan.threads)
            env = {**forwarded_environment(), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
            actor = self._ray.remote(StageWorker).options(**ray_options(self.plan.resources), max_restarts=0,
                                                          runtime_env={"env_vars": env})
            self._actors = [actor.remote(self.config, self.plan.plugins, str(self.cache_home), self.plan.threads)
                            for _ in range(self.plan.workers)]
        return self._actors

    def _get(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a dead actor or a remote error stops the run, in one line
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, RetbenchError):
                raise cause from None
            raise RetbenchError(f"Ray worker failed: {type(cause).__name__}: {cause}") from None

    def map(self, method: str, calls: list[tuple[Any, ...]]) -> list[Any]:
        """``method(*args)`` of the i-th call on the i-th actor, in order."""
        actors = self.actors()
        return [self._get(ref) for ref in [getattr(a, method).remote(*args) for a, args in zip(actors, calls)]]

    def shards(self, stage: Stage, indices: Sequence[int], size: int, description: str) -> None:
        """Shards ``indices`` of ``stage`` computed by the actors, each given the next one as it
        finishes one; a shard that failed stops the run after the running ones end (those
        written are kept for a resume)."""
        actors = self.actors()
        todo = list(indices)
        if len(todo) < len(actors):
            progress.note(f"{stage.name}: {len(todo)} shard(s) for {len(actors)} workers; a smaller --shard-size "
                          "spreads the work")
        running: dict[Any, Any] = {}
        errors: list[str] = []

        def hand(actor: Any) -> None:
            if todo and not errors:
                index = todo.pop(0)
                running[actor.shard.remote(stage.name, stage.key, str(stage.path), index, size)] = (actor, index)

        def finished() -> Iterator[int]:
            for actor in actors:
                hand(actor)
            while running:
                done, _ = self._ray.wait(list(running), num_returns=1)
                actor, index = running.pop(done[0])
                error = self._get(done[0])
                if error is not None:
                    errors.append(f"shard {index}: {error}")
                hand(actor)
                yield index

        for _ in progress.track(finished(), description=f"{description} on {len(actors)} workers",
                                total=len(todo)):
            pass
        if errors:
            raise RetbenchError(f"stage '{stage.name}' on Ray workers: {errors[0]}")

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        self._actors = []
        self._stack.close()

