"""Cache entries that are sealed, verified on read, replaced atomically, and whose leftovers
are cleaned.

A finished entry's manifest lists every file under it with its size and sha256, plus a digest
of the manifest itself: an edited, truncated or missing file, or an edited manifest, makes the
entry damaged, and a damaged entry is recomputed with a warning, never served. Files are hashed
again only when their (size, mtime, ctime, inode) changed since they last verified, so a cached
run over a large index does not re-hash it; any write moves ``ctime``, which cannot be set back.
Manifests written before sealing existed (no ``files``) are trusted as before.

``--overwrite always`` computes a stage into ``<key>.new-<token>`` next to the entry, then swaps
it with the entry in one ``renameat2(RENAME_EXCHANGE)`` (two renames where the system lacks
it): a run that found the old entry under the lock and reads it afterwards reads either the
old files or the new ones, never a cleared folder. The new entry's old path stays a symlink to
the entry for components that keep the path they computed in (an index searched lazily).
Leftovers of killed writers are removed under the stage lock, when no writer can own them.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retbench.errors import RetbenchError

if TYPE_CHECKING:
    from retbench.engine.cache import Stage

VERIFIED = ".verified.json"  # (size, mtime, ctime, inode) of each file when it last hashed right
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
LINK_TTL_SECONDS = 24 * 3600  # how long a swapped-in entry's build path keeps resolving


def replace_entry(stage: Stage, compute: Callable[[Stage], dict[str, Any]]) -> dict[str, Any]:
    """Compute ``stage`` afresh into a new entry and swap it in; returns the manifest.
    The caller holds the stage lock."""
    from retbench.engine.cache import Stage

    staging = Stage(stage.path.parent.parent, stage.name, stage.key,
                    path=stage.path.with_name(f"{stage.key}.new-{secrets.token_hex(4)}"))
    staging.path.mkdir(parents=True)
    try:
        manifest = _relocated(compute(staging), str(staging.path), str(stage.path))
        staging.commit(manifest)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    old = stage.path.with_name(f"{stage.key}.old-{secrets.token_hex(4)}")
    if stage.path.exists():
        if _exchange(staging.path, stage.path):
            os.rename(staging.path, old)
        else:
            os.rename(stage.path, old)
            os.rename(staging.path, stage.path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging.path, stage.path)
    staging.path.symlink_to(stage.path.name, target_is_directory=True)
    return stage.manifest()


def seal(manifest: dict[str, Any], entry: Path) -> dict[str, Any]:
    """``manifest`` with the table of the entry's files and its own digest added."""
    files = {}
    for path in sorted(entry.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name not in ("manifest.json", VERIFIED):
            files[path.relative_to(entry).as_posix()] = [path.stat().st_size, _sha256(path)]
    sealed = {**manifest, "files": files}
    return {**sealed, "digest": _digest(sealed)}


def damage(manifest_path: Path, entry: Path) -> str | None:
    """Why the sealed entry cannot be served, or None when it is intact."""
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return f"manifest unreadable: {exc}"
    if not isinstance(manifest, dict):
        return "manifest is not an object"
    if "files" not in manifest:
        return None
    body = {k: v for k, v in manifest.items() if k != "digest"}
    if manifest.get("digest") != _digest(body):
        return "manifest edited"
    stats = {}
    for name, (size, _) in manifest["files"].items():
        path = entry / name
        if not path.is_file():
            return f"{name} missing"
        stat = path.stat()
        if stat.st_size != size:
            return f"{name} has {stat.st_size} bytes, expected {size}"
        stats[name] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    memo_path = entry / VERIFIED
    memo = {"digest": manifest["digest"], "stats": stats}
    try:
        if json.loads(memo_path.read_text("utf-8")) == memo:
            return None  # hashed before, and no file was written since (ctime cannot be set back)
    except (OSError, ValueError):
        pass
    for name, (_, digest) in manifest["files"].items():
        if _sha256(entry / name) != digest:
            return f"{name} changed"
    try:
        from retbench.engine.cache import atomic_write_json

        atomic_write_json(memo_path, memo)
    except OSError:  # a read-only cache hashes again next time
        pass
    return None


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _digest(manifest: dict[str, Any]) -> str:
    from retbench.engine.cache import canonical_json

    return hashlib.sha256(canonical_json(manifest).encode()).hexdigest()


def remove_leftovers(entry: Path, *, now: float | None = None) -> None:
    """Delete what killed writers left next to ``entry`` (call under its stage lock)."""
    now = time.time() if now is None else now
    for path in entry.parent.glob(f"{entry.name}.*-*"):
        kind = path.name[len(entry.name) + 1:].split("-", 1)[0]
        try:
            if path.is_symlink():
                if now - path.lstat().st_mtime > LINK_TTL_SECONDS:
                    path.unlink(missing_ok=True)
            elif kind in ("new", "old"):
                shutil.rmtree(path, ignore_errors=True)
        except OSError:  # a read-only cache: left for a writable run
            pass


_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_read_only(exc: OSError) -> bool:
    return exc.errno in _READ_ONLY


def read_only_error(folder: Path, what: str) -> Exception:
    return StorageError(f"cache folder {folder} is read-only: {what} and cannot be written; "
                         "give a writable --cache-dir (or RETBENCH_HOME)")


class StorageError(RetbenchError):
    """The cache could not be written: disk full, over quota, read-only."""


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """A full disk, quota or read-only folder met while ``what`` writes becomes one line naming
    it and the file (also when a component's own write failed inside its call)."""
    try:
        yield
    except StorageError:
        raise  # named by the innermost stage already
    except Exception as exc:  # noqa: BLE001 - re-raised, named
        cause: BaseException | None = exc
        while cause is not None and not (isinstance(cause, OSError) and cause.errno in (*_FULL, *_READ_ONLY)):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        assert isinstance(cause, OSError)
        problem = "disk full or over quota" if cause.errno in _FULL else "read-only or not permitted"
        where = f" writing {cause.filename}" if cause.filename else ""
        raise StorageError(f"{what}: {problem}{where} ({cause.strerror}); free space or give another "
                            "--cache-dir, then run again to resume") from exc


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _relocated(value: Any, old: str, new: str) -> Any:
    """``value`` with the staging path in its strings replaced by the entry's path."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _relocated(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocated(v, old, new) for v in value]
    return value
