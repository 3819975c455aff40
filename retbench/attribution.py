"""Errors and warnings that name the component, plugin and distribution they come from.

Plugin code (a retriever's ``index``/``search``, a reader's ``answer``, an observer) runs inside
:func:`attributed`: an exception it raises becomes a :class:`ComponentError` saying who raised
it and in which call, with the original exception chained for ``--debug``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from retbench.errors import RetbenchError


class ComponentError(RetbenchError):
    """A component (plugin code) failed or returned something unusable."""


class RetbenchWarning(UserWarning):
    """Something retbench repaired or skipped (shown as one ``warning:`` line by the CLI)."""


def warn(message: str) -> None:
    warnings.warn(message, RetbenchWarning, stacklevel=2)


def print_warnings_with(show: Callable[[str], None]) -> None:
    """Show each RetbenchWarning as one line through ``show`` (the CLI's ``warning:`` lines)."""
    previous = warnings.showwarning

    def showwarning(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, RetbenchWarning):
            show(str(message))
        else:
            previous(message, category, *args, **kwargs)

    warnings.showwarning = showwarning


def describe(role: str, described: dict[str, Any] | None) -> str:
    """``retriever 'bm25' (plugin 'bm25', retbench-bm25 0.3.0)`` from a run's component description."""
    role = role.split(":")[0]  # "augmenter:crop" -> augmenter 'crop'
    if not described:
        return role
    where = [f"plugin '{described['plugin']}'"] if described.get("plugin") else []
    dist = " ".join(p for p in (described.get("distribution"), described.get("distribution_version")) if p)
    if dist:
        where.append(dist)
    return f"{role} '{described.get('name', '?')}'" + (f" ({', '.join(where)})" if where else "")


@contextmanager
def attributed(who: str, call: str) -> Iterator[None]:
    """Re-raise an exception from plugin code as ``<who> failed in <call>: <Type>: <message>``.

    retbench's own errors (a ConfigError a component raises on purpose, say) keep their message,
    prefixed with the component when it does not name it yet.
    """
    try:
        yield
    except ComponentError:
        raise
    except RetbenchError as exc:
        if who.split(" (")[0] in str(exc) or not _plain_init(exc):
            raise
        raise type(exc)(f"{who}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - attribute, never swallow
        raise ComponentError(f"{who} failed in {call}: {type(exc).__name__}: {exc}") from exc


def _plain_init(exc: Exception) -> bool:
    """Whether ``type(exc)(message)`` rebuilds the error (not DataFormatError's keyword form)."""
    try:
        type(exc)("probe")
    except TypeError:
        return False
    return True


def notify(pm: Any, hook: str, **kwargs: Any) -> None:
    """Call every observer of ``hook`` (``retbench_run_start`` / ``_finish``) on its own: one that
    raises is named in a warning and neither fails the run nor stops a grid."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except Exception as exc:  # noqa: BLE001 - an observer must not take the run down
            dist = " ".join(p for p in pm.distributions.get(impl.plugin_name, ("", "")) if p)
            warn(f"observer plugin '{impl.plugin_name}'{f' ({dist})' if dist else ''} failed in {hook}: "
                 f"{type(exc).__name__}: {exc}")
