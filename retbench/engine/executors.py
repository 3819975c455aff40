"""Where the cells of a grid run: one after another in this process (``local``) or as Ray tasks
on a cluster (``ray``, a local one when no address is given).

Either way each cell is an ordinary :func:`~retbench.engine.evaluate.evaluate` call against the
same stage cache, so a re-run skips finished cells and stages, and one failing cell is reported
without losing the others. A Ray worker rebuilds the run's plugin manager from the same
``--plugins-dir`` and ``--block-plugin`` and opens the cache at the same path, which on a
multi-node cluster must be a shared filesystem (docs/scale.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from retbench import progress
from retbench.data.types import RunRecord
from retbench.engine.cache import Cache
from retbench.engine.config import RunConfig
from retbench.engine.evaluate import LOCAL_EXECUTOR, evaluate
from retbench.errors import ConfigError, RetbenchError
from retbench.host.manager import get_plugin_manager

EXECUTORS = ("local", "ray")
#: ``--cell-resources`` keys Ray knows by a keyword of its own; any other key is a custom resource
RAY_KEYWORDS = {"cpu": "num_cpus", "gpu": "num_gpus", "memory": "memory"}
#: the driver's environment variables with this prefix reach every Ray worker (RETBENCH_HOME, ...)
FORWARDED_PREFIX = "RETBENCH_"


@dataclass(frozen=True)
class PluginSource:
    """What a worker needs to build the same plugin manager as the driver."""

    plugins_dir: str | None = None
    block: tuple[str, ...] = ()


@dataclass
class CellOutcome:
    """One grid cell (``index`` in the grid's order): its record, or the one-line error that
    stopped it."""

    index: int
    config: RunConfig
    record: RunRecord | None = None
    error: str | None = None


@dataclass
class GridJob:
    """The cells of a grid and what every executor needs to run them."""

    configs: Sequence[RunConfig]
    plugins: PluginSource
    cache_home: Path
    overwrite: str = "only-missing"
    records_dir: str | None = None
    labels: Sequence[str] = field(default_factory=list)


RESOURCE = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.-]*)\s*=\s*(?P<value>\d+(\.\d*)?|\.\d+)\s*$")


def parse_resources(text: str | None, *, option: str = "--cell-resources") -> dict[str, float]:
    """``cpu=1,gpu=0,accelerator=2`` -> ``{"cpu": 1.0, "gpu": 0.0, "accelerator": 2.0}``."""
    resources: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = RESOURCE.match(part)
        if match is None:
            raise ConfigError(f"{option}: '{part}' is not NAME=NUMBER (e.g. cpu=1,gpu=0)")
        resources[match["name"]] = float(match["value"])
    return resources


def run_cell(index: int, config: RunConfig, *, plugins: PluginSource, cache_home: str, overwrite: str,
             records_dir: str | None, executor: Mapping[str, Any], pm: Any = None) -> CellOutcome:
    """One cell, its failure caught and kept as a one-line message."""
    try:
        pm = pm or get_plugin_manager(block=plugins.block, plugins_dir=plugins.plugins_dir)
        record = evaluate(config, pm=pm, cache=Cache(cache_home, overwrite=overwrite), records_dir=records_dir,
                          executor=executor)
        return CellOutcome(index, config, record=record)
    except RetbenchError as exc:
        return CellOutcome(index, config, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one cell must not take the others down
        return CellOutcome(index, config, error=f"{type(exc).__name__}: {exc}")


def run_local(job: GridJob, *, pm: Any) -> Iterator[CellOutcome]:
    """The cells one after another in this process, with the driver's plugin manager."""
    for index, config in enumerate(job.configs):
        yield run_cell(index, config, plugins=job.plugins, cache_home=str(job.cache_home), overwrite=job.overwrite,
                       records_dir=job.records_dir, executor=LOCAL_EXECUTOR, pm=pm)


def _ray_cell(index: int, config: RunConfig, plugins: PluginSource, cache_home: str, overwrite: str, records_dir: str | None,
              address: str | None) -> CellOutcome:
    import ray

    executor = {"name": "ray", "address": address or "local", "node": ray.get_runtime_context().get_node_id(),
                "host": socket.gethostname()}
    return run_cell(index, config, plugins=plugins, cache_home=cache_home, overwrite=overwrite, records_dir=records_dir,
                    executor=executor)


@contextlib.contextmanager
def ray_cluster(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to ``address``, else to the instance this process already
    joined, else to a local one started on 127.0.0.1 (``num_cpus``, default all) and shut down
    on leaving. Ray prints its messages about dying workers on stdout, which may hold
    ``--json``: inside the block they go to stderr."""
    try:
        import ray
    except ImportError:
        raise ConfigError("running on Ray needs Ray: pip install 'retbench[ray]'") from None
    started = not ray.is_initialized()
    with contextlib.redirect_stdout(sys.stderr):
        if started:
            settings: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                ray.init(address=address, **settings)
            else:
                ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **settings)
        try:
            yield ray
        finally:
            if started:
                ray.shutdown()


def forwarded_environment() -> dict[str, str]:
    """The driver's ``RETBENCH_*`` variables, for a Ray ``runtime_env``."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIX)}


def ray_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray ``.options()`` for ``cpu=1,gpu=0,NAME=X``: Ray's own keywords, the rest as custom resources."""
    options: dict[str, Any] = {RAY_KEYWORDS[k]: v for k, v in resources.items() if k in RAY_KEYWORDS}
    custom = {k: v for k, v in resources.items() if k not in RAY_KEYWORDS}
    if custom:
        options["resources"] = custom
    return options


def submission_order(configs: Sequence[RunConfig]) -> list[int]:
    """Cells in the order to submit them: those differing only in ``k`` share their index, and a
    second one started beside the first would wait for its lock holding a CPU, so the first cell
    of every such group goes first, then the second of each, and so on."""
    rank: dict[int, tuple[int, int]] = {}
    seen: dict[str, int] = {}
    for i, config in enumerate(configs):
        group = json.dumps(replace(config, k=1).to_dict(), sort_keys=True, default=str)
        rank[i] = (seen.get(group, 0), i)
        seen[group] = seen.get(group, 0) + 1
    return sorted(rank, key=rank.__getitem__)


def run_on_ray(job: GridJob, *, address: str | None = None,
               resources: Mapping[str, float] | None = None) -> Iterator[CellOutcome]:
    """Every cell as a Ray task, yielded as they finish (:func:`run_grid` restores the grid's
    order), on :func:`ray_cluster` (``address``, or a local instance of every CPU)."""
    with ray_cluster(address) as ray:
        task = ray.remote(_ray_cell).options(**ray_options(resources or {"cpu": 1}), max_retries=0,
                                             runtime_env={"env_vars": forwarded_environment()})
        pending = {task.remote(i, job.configs[i], job.plugins, str(job.cache_home), job.overwrite, job.records_dir,
                               address): i
                   for i in submission_order(job.configs)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a worker that died is one failed cell
                outcome = CellOutcome(index, job.configs[index], error=f"Ray task failed: {type(exc).__name__}: {exc}")
            yield outcome


def run_grid(job: GridJob, *, executor: str, pm: Any, address: str | None = None,
             resources: Mapping[str, float] | None = None) -> list[CellOutcome]:
    """Every cell's outcome, in the grid's order, with progress shown as cells finish."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor '{executor}': choose one of {', '.join(EXECUTORS)}")
    if executor == "local" and (address or resources):
        raise ConfigError("--ray-address and --cell-resources need --executor ray")
    outcomes = run_local(job, pm=pm) if executor == "local" else run_on_ray(job, address=address,
                                                                             resources=resources)
    finished: dict[int, CellOutcome] = {}
    labels = list(job.labels) or [c.command() for c in job.configs]
    for outcome in progress.track(outcomes, description=f"grid ({executor})", total=len(job.configs)):
        finished[outcome.index] = outcome
        progress.note(f"cell {labels[outcome.index]}: " + ("failed" if outcome.error else "done"))
    return [finished[i] for i in range(len(job.configs))]
