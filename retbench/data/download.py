"""Fetch dataset archives: checksum-verified, resumable, safely extracted, cached.

Files land in ``$RETBENCH_HOME/downloads/``; a partial download is kept as ``<file>.part`` and
continued with an HTTP Range request. A checksum mismatch deletes the file and downloads it
again (``retries`` times) before failing. Archives are extracted into a temporary folder and
renamed into place; members that would land outside the target (absolute paths, ``..``,
links) are refused. ``RETBENCH_OFFLINE=1`` forbids any download. Where the publisher gives no checksum,
the sha256 of the first complete download is pinned beside the file and checked afterwards. Written on the standard
library (urllib, zipfile, tarfile): no well-kept library combines resume, checksums and
safe extraction.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from filelock import FileLock

from retbench.errors import RetbenchError
from retbench.data.lines import file_sha256
from retbench.progress import track

OFFLINE_ENV = "RETBENCH_OFFLINE"
CHUNK = 1 << 20


class DownloadError(RetbenchError):
    """A download that failed, or that could not be verified."""


class UnsafeArchiveError(RetbenchError):
    """An archive member that would be written outside the target folder."""


@dataclass(frozen=True)
class Source:
    """Where a file comes from and how to check it (``sha256`` preferred, ``md5`` as published)."""

    url: str
    sha256: str | None = None
    md5: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(urllib.request.urlparse(self.url).path).name

    def verify(self, path: Path) -> bool:
        """Check against the published checksum or, when the publisher gives none, against the
        sha256 pinned beside the file at its first download (trust on first use)."""
        pinned = _pin_path(path)
        expected_sha = self.sha256 or (pinned.read_text().strip() if pinned.is_file() and not self.md5 else None)
        if not (expected_sha or self.md5):
            return True
        digest = hashlib.sha256() if expected_sha else hashlib.md5()  # noqa: S324 - publisher's checksum
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
        return digest.hexdigest() == (expected_sha or self.md5)


def _pin_path(path: Path) -> Path:
    name = path.name[: -len(".part")] if path.name.endswith(".part") else path.name
    return path.with_name(name + ".sha256")


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")


def fetch(source: Source, folder: Path, *, retries: int = 2, timeout: float = 60) -> Path:
    """Return the verified local copy of ``source`` in ``folder``, downloading as needed."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.filename
    with FileLock(str(target) + ".lock"):
        if target.is_file() and source.verify(target):
            return target
        if offline():
            raise DownloadError(f"{source.url} is not cached and {OFFLINE_ENV} forbids downloading")
        for attempt in range(retries + 1):
            partial = target.with_name(target.name + ".part")
            _download(source.url, partial, timeout=timeout)
            if source.verify(partial):
                os.replace(partial, target)
                if not (source.sha256 or source.md5):
                    _pin_path(target).write_text(file_sha256(target) + "\n")
                return target
            partial.unlink()
        raise DownloadError(f"{source.url}: checksum mismatch after {retries + 1} attempts; the file was discarded")


def _download(url: str, partial: Path, *, timeout: float) -> None:
    """Download into ``partial``, continuing from its current size when the server allows."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) URLs from the catalog
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            return
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{url}: {exc}") from None
    with response:
        resumed = have and response.status == 206
        total = response.headers.get("Content-Length")
        chunks = iter(lambda: response.read(CHUNK), b"")
        expected = (int(total) + CHUNK - 1) // CHUNK if total else None
        with open(partial, "ab" if resumed else "wb") as handle:
            for block in track(chunks, description=f"downloading {partial.name[:-5]}", total=expected):
                handle.write(block)


def _checked_member(name: str, target: Path) -> Path:
    path = PurePosixPath(name.replace("\\", "/"))
    destination = (target / path).resolve()
    if path.is_absolute() or ".." in path.parts or not destination.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(f"archive member '{name}' would be written outside {target}; refusing the archive")
    return destination


def extract(archive: Path, target: Path) -> Path:
    """Extract a zip or tar archive into ``target`` (created whole, or not at all)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                for info in bundle.infolist():
                    _checked_member(info.filename, scratch)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise UnsafeArchiveError(f"archive member '{info.filename}' is a symbolic link; refusing")
                bundle.extractall(scratch)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                for member in bundle.getmembers():
                    _checked_member(member.name, scratch)
                    if member.issym() or member.islnk() or member.isdev():
                        raise UnsafeArchiveError(f"archive member '{member.name}' is a link or device; refusing")
                bundle.extractall(scratch, filter="data")
        else:
            raise DownloadError(f"{archive} is neither a zip nor a tar archive")
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
