"""Errors that the CLI shows as one clear line (``--debug`` adds the traceback)."""

from __future__ import annotations

from pathlib import Path


class RetbenchError(Exception):
    """Base class for every error retbench reports to a user."""


class DataFormatError(RetbenchError):
    """Malformed input data, located by file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class UnknownComponentError(RetbenchError, KeyError):
    """A name that no plugin registered."""

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigError(RetbenchError):
    """A run configuration that cannot be used as given."""


class NotCachedError(RetbenchError):
    """A stage is missing from the cache and the overwrite policy forbids computing it."""
