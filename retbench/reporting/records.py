"""Saving and reading RunRecords, TREC run files, and the environment a run saw."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retbench.engine.cache import atomic_write_json, atomic_write_text
from retbench.errors import DataFormatError, RetbenchError
from retbench.reporting.redaction import redact_record
from retbench.data.types import Run, RunRecord

if TYPE_CHECKING:
    from retbench.host.manager import RetbenchPluginManager

LIBRARIES = ("retbench", "pluggy", "numpy", "pandas", "pyarrow", "ir-measures", "pytrec-eval-terrier")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_hash(cwd: Path | None = None) -> str | None:
    """The commit of the retbench source tree this process imported (an editable install),
    not of the current directory's repository; None for an installed package."""
    package = Path(__file__).resolve().parents[1]  # the retbench package (this is retbench/reporting/)
    folder = cwd or package
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    top, commit = lines
    if cwd is None and Path(top).resolve() != package.parent:
        return None  # e.g. a virtual environment inside some other repository
    return commit


def describe_environment(pm: RetbenchPluginManager) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "plugins": {name: f"{dist} {version}".strip() for name, (dist, version) in sorted(pm.distributions.items())
                    if pm.get_plugin(name) is not None},
        "git": git_hash(),
        "machine": {
            "system": platform.system(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpus": os.cpu_count(),
        },
    }


def write_trec_run(path: Path, run: Run, *, tag: str) -> None:
    lines = []
    for qid in run:
        ranked = sorted(run[qid].items(), key=lambda x: (-x[1], x[0]))
        lines += [f"{qid} Q0 {doc} {rank} {score:.6f} {tag}" for rank, (doc, score) in enumerate(ranked, 1)]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def record_slug(record: RunRecord) -> str:
    parts = [record.components.get(r, {}).get("name") for r in ("retriever", "reader")]
    label = "-".join(p for p in parts if p) or "run"
    return f"{label}-{record.dataset['split']}-{record.run_id[:10]}"


def save_record(record: RunRecord, folder: Path, *, run: Run | None, slug: bool = False) -> Path:
    """Write ``record.json`` (+ ``per_query.json`` and ``run.trec``) into ``folder``.

    With ``slug``, files are named after the run (``<slug>.json``, ``<slug>.per_query.json``)
    so that many records share one folder (``leaderboards/records/<dataset>/``).
    """
    stem = record_slug(record) if slug else "record"
    main = folder / f"{stem}.json"
    atomic_write_json(main, redact_record(record.to_dict()))  # defence in depth: nothing secret on disk
    atomic_write_json(folder / f"{stem}.per_query.json", record.per_query)
    if run is not None:
        write_trec_run(folder / "run.trec", run, tag=record_slug(record))
    return main


def save_run_record(record: RunRecord, folder: Path, *, run: Run | None) -> Path | None:
    """``save_record`` into the cache's ``runs/`` folder; a read-only cache only warns (the
    record is still returned and printed), a full disk is an error naming the folder."""
    from retbench.engine.integrity import is_read_only, storage_errors

    try:
        with storage_errors(f"saving the run record in {folder}"):
            return save_record(record, folder, run=run)
    except RetbenchError as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OSError) and is_read_only(cause):
            from retbench.attribution import warn

            warn(f"read-only cache: run record not saved in {folder}")
            return None
        raise


def run_record_path(run_id: str, home: Path | None = None) -> Path:
    """The record a run saved in the cache (``$RETBENCH_HOME/runs/<run id>/record.json``), named
    by its run id or a unique prefix of at least 8 characters of it."""
    from retbench.engine.cache import default_home

    runs = (home or default_home()) / "runs"
    if len(run_id) < 8 or not all(c in "0123456789abcdef" for c in run_id):
        raise RetbenchError(f"run id '{run_id}': expected 8 or more hex digits of a run id")
    found = sorted(runs.glob(f"{run_id}*/record.json"))
    if len(found) != 1:
        what = "no run" if not found else f"{len(found)} runs"
        raise RetbenchError(f"run id '{run_id}': {what} in {runs} start with it")
    return found[0]


def load_record(path: Path) -> RunRecord:
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    missing = [f for f in ("run_id", "metrics", "dataset", "components") if f not in data]
    if missing:
        raise DataFormatError("not a RunRecord", path=path, field=missing[0])
    record = RunRecord.from_dict(data)
    per_query = path.with_name(path.name[: -len(".json")] + ".per_query.json")
    if per_query.is_file():
        record.per_query = json.loads(per_query.read_text("utf-8"))
    return record


def load_records(folder: Path) -> list[RunRecord]:
    return [
        load_record(p)
        for p in sorted(folder.rglob("*.json"))
        if not p.name.endswith(".per_query.json")
    ]
