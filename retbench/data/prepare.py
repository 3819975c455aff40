"""Prepare a corpus once into a memory-mapped Arrow file, streaming, validated, atomically."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from retbench.engine.cache import atomic_write_json, stage_key
from retbench.errors import DataFormatError
from retbench.progress import track
from retbench.data.types import Corpus

BATCH_ROWS = 10_000

# (line, id, title, text, extra) rows; the reader feeds the raw bytes it reads to ``digest``.
RowReader = Callable[[Any], Iterator[tuple[int, str, str, str, dict[str, Any]]]]


def prepare_corpus(
    source: Path, read_rows: RowReader, *, workdir: Path, reader: str, id_field: str = "_id"
) -> Corpus:
    """Return the prepared corpus for ``source``, building it on first use.

    The Arrow file is written to a temporary name and renamed only after every row parsed
    and ids proved unique, so malformed input leaves nothing behind. The corpus fingerprint
    is the sha256 of the source bytes; ``reader`` names the parser (and its version) so a
    parser change prepares again.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    locator = stage_key(kind="corpus", path=str(source.resolve()), source=source_identity(source), reader=reader)
    target = workdir / "corpus" / locator
    if _read_only_and_prepared(target):
        corpus, _ = _open_prepared(target)
        if corpus is not None:
            return corpus
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        remove_stale_temporaries(target.parent, locator)
        manifest = target / "manifest.json"
        if manifest.is_file():
            corpus, damaged = _open_prepared(target)
            if corpus is not None:
                return corpus
            from retbench.attribution import warn

            warn(f"prepared corpus {target} is damaged ({damaged}); preparing {source} again")
            manifest.unlink()
        schema = pa.schema([(c, pa.string()) for c in ("id", "title", "text", "extra")])
        tmp = target.parent / f".{locator}.{os.getpid()}.arrow.tmp"
        digest = hashlib.sha256()
        rows = 0
        try:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
                columns: dict[str, list[str]] = {c: [] for c in schema.names}
                rows_read = track(read_rows(digest), description=f"preparing {source.name}")
                for _, doc_id, title, text, extra in rows_read:
                    columns["id"].append(doc_id)
                    columns["title"].append(title)
                    columns["text"].append(text)
                    columns["extra"].append(json.dumps(extra, ensure_ascii=False))
                    rows += 1
                    if len(columns["id"]) >= BATCH_ROWS:
                        writer.write_batch(pa.record_batch(columns, schema=schema))
                        columns = {c: [] for c in schema.names}
                if columns["id"]:
                    writer.write_batch(pa.record_batch(columns, schema=schema))
            if rows == 0:
                raise DataFormatError("corpus is empty: no passages found", path=source)
            table = pa.ipc.open_file(pa.memory_map(str(tmp), "r")).read_all()
            if pc.count_distinct(table.column("id")).as_py() != rows:
                counts = pc.value_counts(table.column("id"))
                dup = next(c["values"] for c in counts.to_pylist() if c["counts"] > 1)
                raise _duplicate_error(source, read_rows, dup, id_field)
            del table
            target.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target / "corpus.arrow")
            from retbench.engine.integrity import seal

            atomic_write_json(manifest, seal({"fingerprint": digest.hexdigest(), "rows": rows, "source": str(source),
                                              "arrow_bytes": (target / "corpus.arrow").stat().st_size}, target))
        finally:
            tmp.unlink(missing_ok=True)
        return Corpus.open(target / "corpus.arrow", fingerprint=digest.hexdigest())


HASHED_SOURCE_BYTES = 64 * 2**20  # hashed on every run below this (~0.1 s); larger: stat only


def source_identity(source: Path) -> dict[str, Any]:
    """What tells one version of a corpus file from another: its content hash when it is small
    enough to hash on every run, else its size, inode and change times. ``ctime`` changes on
    every write and cannot be set back, so an edit in place that keeps size and mtime still
    prepares again; hashing a 13 GB Wikipedia dump on every run (25 s here) would not pay."""
    stat = source.stat()
    if stat.st_size <= HASHED_SOURCE_BYTES:
        with source.open("rb") as handle:
            return {"sha256": hashlib.file_digest(handle, "sha256").hexdigest()}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}


def _read_only_and_prepared(target: Path) -> bool:
    """A prepared corpus in a folder this process cannot write: read it without the lock."""
    return (target / "manifest.json").is_file() and not os.access(target.parent, os.W_OK)


def _open_prepared(target: Path) -> tuple[Corpus | None, str]:
    """The prepared corpus, or None and why it cannot be used: the manifest seals the Arrow file
    (size and sha256, re-hashed only when its stat changed, see :mod:`retbench.engine.integrity`)."""
    import pyarrow as pa

    from retbench.engine.integrity import damage

    problem = damage(target / "manifest.json", target)
    if problem:
        return None, problem
    try:
        info = json.loads((target / "manifest.json").read_text("utf-8"))
        arrow = target / "corpus.arrow"
        size = arrow.stat().st_size
        if "arrow_bytes" in info and size != info["arrow_bytes"]:
            return None, f"corpus.arrow has {size} bytes, expected {info['arrow_bytes']}"
        corpus = Corpus.open(arrow, fingerprint=info["fingerprint"])
        if len(corpus) != info["rows"]:
            return None, f"{len(corpus)} rows, expected {info['rows']}"
        return corpus, ""
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def remove_stale_temporaries(folder: Path, locator: str) -> None:
    """Delete what killed preparations left: this corpus's temporaries (the caller holds its
    lock, so no live writer owns them) and any other whose writing process is gone."""
    for tmp in folder.glob(".*.arrow.tmp"):
        name, _, pid = tmp.name[1:-len(".arrow.tmp")].rpartition(".")
        if name == locator or (pid.isdigit() and not _alive(int(pid))):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _duplicate_error(
    source: Path, read_rows: RowReader, duplicate: str, id_field: str
) -> DataFormatError:
    """Re-read the source to name both lines of a duplicated id (only on the error path)."""
    first: int | None = None
    for line, doc_id, *_ in read_rows(hashlib.sha256()):
        if doc_id == duplicate:
            if first is not None:
                return DataFormatError(
                    f"duplicate id '{duplicate}' (first seen on line {first})",
                    path=source,
                    line=line,
                    field=id_field,
                )
            first = line
    return DataFormatError(f"duplicate id '{duplicate}'", path=source, field=id_field)
