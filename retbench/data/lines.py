"""Line readers that report the file, line and field of bad input."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from retbench.errors import DataFormatError


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(path: Path, *, digest: Any = None) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 text file (``.gz`` allowed), 1-based.

    Undecodable bytes are a :class:`DataFormatError` naming the line. ``digest`` (a hashlib
    object), when given, is fed the raw bytes, so a file is fingerprinted in the same pass.
    """
    if not path.is_file():
        raise DataFormatError("file not found", path=path)
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if digest is not None:
                digest.update(raw)
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 4]!r}); "
                    "re-encode the file as UTF-8",
                    path=path,
                    line=number,
                ) from None
            yield number, text.rstrip("\r\n")


def iter_jsonl(path: Path, *, digest: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON-lines file."""
    for number, text in iter_lines(path, digest=digest):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"invalid JSON ({exc.msg} at column {exc.colno})", path=path, line=number
            ) from None
        if not isinstance(value, dict):
            raise DataFormatError(
                f"expected a JSON object, got {type(value).__name__}", path=path, line=number
            )
        yield number, value


def iter_tsv(path: Path, *, digest: Any = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a tab-separated file, CSV quoting honoured (DPR's
    files quote fields that contain quotes: a naive split breaks on them)."""
    reader = csv.reader((text for _, text in iter_lines(path, digest=digest)), delimiter="\t")
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields
    except csv.Error as exc:
        raise DataFormatError(f"malformed TSV ({exc})", path=path, line=reader.line_num) from None


def require_str(
    record: dict[str, Any],
    field: str,
    *,
    path: Path,
    line: int,
    allow_empty: bool = False,
    numbers_ok: bool = False,
) -> str:
    """A string field; with ``numbers_ok`` (ids) a JSON integer is accepted and converted."""
    if field not in record:
        raise DataFormatError("missing required field", path=path, line=line, field=field)
    value = record[field]
    allowed = (str, int) if numbers_ok else (str,)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise DataFormatError(
            f"expected a string, got {type(value).__name__}", path=path, line=line, field=field
        )
    text = str(value)
    if not allow_empty and not text.strip():
        raise DataFormatError("must not be empty", path=path, line=line, field=field)
    return text


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
