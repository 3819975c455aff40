"""Stage-keyed, content-addressed cache with atomic writes, file locks and resume.

Layout: ``$RETBENCH_HOME/<stage>/<key>/`` holds a stage's output; ``manifest.json`` is written
last and atomically, so a directory without it is never read as a finished result (it may
hold resumable shards of an interrupted run). ``<stage>/<key>.lock`` serialises concurrent
runs computing the same stage: the second waits, then finds the stage finished.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from retbench.errors import NotCachedError

CACHE_SCHEMA_VERSION = 1
HOME_ENV = "RETBENCH_HOME"


class Overwrite(str, enum.Enum):
    """What to do with cached stage outputs (the names follow MTEB's OverwriteStrategy).

    ``only-missing``: reuse finished stages and shards, compute the rest (resume).
    ``always``: recompute every stage and replace what is cached.
    ``never``: never compute; every stage must be cached already.
    """

    ALWAYS = "always"
    NEVER = "never"
    ONLY_MISSING = "only-missing"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "retbench")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stage_key(**parts: Any) -> str:
    """sha256 over the canonical JSON of everything that determines a stage's output."""
    payload = canonical_json({"cache_schema": CACHE_SCHEMA_VERSION, **parts})
    return hashlib.sha256(payload.encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write names no file: name the target
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=1, default=str))


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class Stage:
    """One stage output directory, identified by stage name and key."""

    def __init__(self, home: Path, stage: str, key: str, *, path: Path | None = None) -> None:
        self.name = stage
        self.key = key
        self.path = path or home / stage / key
        self._lock = FileLock(str(home / stage / f"{key}.lock"))

    @contextmanager
    def locked(self) -> Iterator[Stage]:
        """Hold the stage's lock; in a read-only cache a finished entry is read without it (no
        one can be writing there), and anything else is an error naming the folder."""
        from retbench.engine.integrity import is_read_only, read_only_error

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except OSError as exc:
            if not is_read_only(exc):
                raise
            if not self.complete:
                raise read_only_error(self.path.parent, f"stage '{self.name}' is not cached there") from None
            yield self
            return
        try:
            yield self
        finally:
            self._lock.release()

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def complete(self) -> bool:
        return self.manifest_path.is_file()

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text("utf-8"))

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest last, listing every file of the entry with its size and hash."""
        from retbench.engine.integrity import seal

        atomic_write_json(self.manifest_path, seal({"stage": self.name, "key": self.key, **manifest}, self.path))

    def damage(self) -> str | None:
        """What is wrong with this finished entry (a file changed, missing, truncated), or None."""
        from retbench.engine.integrity import damage

        return damage(self.manifest_path, self.path)

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def workdir(self) -> Path:
        """Where a component keeps this stage's files (persistent, so it can resume)."""
        path = self.path / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def shard_path(self, index: int, size: int) -> Path:
        """Shards of different sizes never mix: a resume with another size starts afresh."""
        return self.path / f"shards-{size}" / f"{index:06d}.json"

    def write_shard(self, index: int, size: int, value: Any) -> None:
        atomic_write_text(self.shard_path(index, size), canonical_json(value))

    def read_shard(self, index: int, size: int) -> Any:
        return json.loads(self.shard_path(index, size).read_text("utf-8"))

    def resumable_shard(self, index: int, size: int) -> Any | None:
        """A shard an interrupted run left, or None when there is none or it cannot be read
        (then it is computed again)."""
        path = self.shard_path(index, size)
        if not path.is_file():
            return None
        try:
            return self.read_shard(index, size)
        except (ValueError, UnicodeDecodeError) as exc:
            from retbench.attribution import warn

            warn(f"{path}: unreadable shard ({exc}); computing it again")
            return None


class Cache:
    """The stage store under one home directory."""

    def __init__(self, home: str | Path | None = None, *, overwrite: Overwrite = Overwrite.ONLY_MISSING):
        self.home = Path(home) if home is not None else default_home()
        self.overwrite = Overwrite(overwrite)

    def stage(self, stage: str, key: str) -> Stage:
        return Stage(self.home, stage, key)

    def run_stage(
        self, stage: Stage, compute: Callable[[Stage], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """Return ``(manifest, cached)``, computing the stage under its lock if needed.

        ``--overwrite always`` computes into a new entry and swaps it in when finished
        (:func:`retbench.engine.integrity.replace_entry`): a run reading the old entry after the lock
        is released never sees a half-cleared directory.
        """
        from retbench.engine.integrity import remove_leftovers, replace_entry, storage_errors

        with stage.locked(), storage_errors(f"stage '{stage.name}'"):
            remove_leftovers(stage.path)
            if self.overwrite is Overwrite.ALWAYS:
                return replace_entry(stage, compute), False
            damaged = stage.damage() if stage.complete else None
            if stage.complete and damaged is None:
                return stage.manifest(), True
            if self.overwrite is Overwrite.NEVER:
                why = f"is damaged ({damaged})" if damaged else "is not cached"
                raise NotCachedError(
                    f"stage '{stage.name}' {why} (key {stage.key[:12]}) and "
                    "--overwrite never forbids computing it"
                )
            if damaged:
                from retbench.attribution import warn

                warn(f"cache entry {stage.path} is damaged ({damaged}); recomputing it")
                return replace_entry(stage, compute), False
            manifest = compute(stage)
            stage.commit(manifest)
            return stage.manifest(), False
