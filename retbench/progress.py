"""Progress reporting that library code can use without printing anything itself.

Components and the pipeline wrap long loops in :func:`track`. By default nothing is shown;
the CLI installs a reporter (rich progress bars) with :func:`reporting`. A reporter also
receives short status notes (e.g. "index: cached").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar

T = TypeVar("T")


class Reporter(Protocol):
    def track(self, iterable: Iterable[T], *, description: str, total: int | None) -> Iterator[T]: ...

    def note(self, message: str) -> None: ...


class SilentReporter:
    def track(self, iterable: Iterable[T], *, description: str, total: int | None) -> Iterator[T]:
        yield from iterable

    def note(self, message: str) -> None:
        return None


_current: ContextVar[Reporter] = ContextVar("retbench_reporter", default=SilentReporter())


def track(iterable: Iterable[T], *, description: str, total: int | None = None) -> Iterator[T]:
    """Iterate, showing a progress bar when a reporter is installed."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return _current.get().track(iterable, description=description, total=total)


def note(message: str) -> None:
    _current.get().note(message)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)
