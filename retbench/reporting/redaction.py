"""Secrets are never written in clear: the redaction applied to everything retbench writes
about a run (``runs/<id>/record.json``, ``--save-record`` files, leaderboards built from them,
observers' hook arguments).

A parameter is secret when its name says so (``api_key``, ``token``, ``password``, ``secret``,
``credentials``, ...) or when its component lists it in a ``secret_params`` class variable.
Its value becomes ``REDACTED``; ``None`` stays ``None`` so a record still says "not given".
The documented route for keys is the environment (``OPENAI_API_KEY``), which never reaches
a record; a key given as a parameter still works but leaves no trace in any output.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Any

REDACTED = "REDACTED"
_SECRET_NAME = re.compile(
    r"(?:.*[_-])?(?:api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key|password|passwd|passphrase|"
    r"secret|credentials?)"
    r"|(?:(?:hf|api|access|auth|bearer|refresh|github|openai|session)[_-]?)?token",
    re.IGNORECASE,
)


def is_secret(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether parameter ``name`` holds a secret (by its name or a component's ``secret_params``)."""
    return name in set(extra) or bool(_SECRET_NAME.fullmatch(name))


def secret_params(cls: type) -> tuple[str, ...]:
    """The parameters a component class declares secret beyond the name rule."""
    return tuple(getattr(cls, "secret_params", ()) or ())


def secrets_of(components: Iterable[Any]) -> tuple[str, ...]:
    """Every ``secret_params`` name declared by the classes of ``components`` (``None`` skipped)."""
    return tuple(name for c in components if c is not None for name in secret_params(type(c)))


def redact(value: Any, extra: Iterable[str] = ()) -> Any:
    """``value`` with every secret-named mapping entry (at any depth) replaced by ``REDACTED``."""
    extra = tuple(extra)
    if isinstance(value, dict):
        return {k: (REDACTED if v is not None and isinstance(k, str) and is_secret(k, extra) else redact(v, extra))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, extra) for v in value)
    return value


def redact_command(command: str, extra: Iterable[str] = ()) -> str:
    """A shell command line with the value of every secret ``key=value`` word redacted."""
    extra = tuple(extra)
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: redact what looks like an assignment, word by word
        words = command.split()
    out = []
    for word in words:
        key, sep, _ = word.partition("=")
        out.append(f"{key}={REDACTED}" if sep and is_secret(key.lstrip("-"), extra) else word)
    return shlex.join(out)


def redact_record(data: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    """A RunRecord's dict with its command, config, components and training redacted."""
    extra = tuple(extra)
    data = dict(data)
    if isinstance(data.get("command"), str):
        data["command"] = redact_command(data["command"], extra)
    for key in ("config", "components", "training", "stages"):
        if key in data:
            data[key] = redact(data[key], extra)
    return data
