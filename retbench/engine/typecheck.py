"""Component parameters checked against their constructor's annotations before anything runs.

``--retriever-arg k1=abc`` (or ``k1 = "abc"`` in TOML) fails at once with one line naming the
component, the parameter, the expected type and the value, instead of a ``TypeError`` deep
inside the component. Only what can be checked without guessing is: builtins, ``X | None``,
unions, ``Literal``, lists / tuples / sets / dicts and their abstract forms, ``Path`` (a string
is accepted: components convert it); any other annotation is trusted.
"""

from __future__ import annotations

import collections.abc as abc
import inspect
import types
import typing
from pathlib import PurePath
from typing import Any

from retbench.errors import ConfigError

_UNCHECKED = object()


def check_params(cls: type, params: dict[str, Any], *, kind: str) -> None:
    """Raise ConfigError for the first parameter whose value does not fit its annotation."""
    hints = _hints(cls)
    for name, value in params.items():
        expected = hints.get(name, _UNCHECKED)
        if expected is _UNCHECKED or _fits(value, expected):
            continue
        raise ConfigError(f"{kind} '{getattr(cls, 'name', cls.__name__)}': parameter '{name}' expects "
                          f"{_describe(expected)}, got {value!r} ({type(value).__name__})")


def check_config_file(cls: type, values: dict[str, Any], *, path: str) -> None:
    """Raise ConfigError naming the file and key of the first TOML value of the wrong type."""
    hints = _hints(cls)
    for key, value in values.items():
        expected = hints.get(key, _UNCHECKED)
        if expected is not _UNCHECKED and not _fits(value, expected):
            raise ConfigError(f"{path}: key '{key}' expects {_describe(expected)}, got {value!r} "
                              f"({type(value).__name__})")


def _hints(cls: type) -> dict[str, Any]:
    """The constructor's annotations, each resolved on its own (one unresolvable name, e.g. a
    TYPE_CHECKING import, leaves only that parameter unchecked)."""
    init = cls.__init__
    module = inspect.getmodule(init)
    namespace = dict(vars(module)) if module else {}
    hints = {}
    for name, parameter in inspect.signature(init).parameters.items():
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            continue
        for _ in range(2):  # a quoted annotation under ``from __future__ import annotations`` is quoted twice
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace, dict(vars(typing)))  # noqa: S307 - the class's own
                except Exception:  # noqa: BLE001 - unresolvable: trust it
                    break
        if not isinstance(annotation, str):
            hints[name] = annotation
    return hints


def _fits(value: Any, expected: Any) -> bool:  # noqa: PLR0911 - one case per kind of annotation
    if expected is Any or isinstance(expected, typing.TypeVar):
        return True
    if expected is None or expected is type(None):
        return value is None
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is typing.Annotated:
        return _fits(value, args[0])
    if origin in (list, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Collection, abc.Iterable, abc.Set):
        if not isinstance(value, (list, tuple, set, frozenset)) or isinstance(value, str):
            return False
        return not args or all(_fits(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(_fits(v, a) for v, a in zip(value, args)))
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        if not isinstance(value, dict):
            return False
        return not args or all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if origin is not None or not isinstance(expected, type):
        return True  # Callable[...], protocols, generics of other libraries: trusted
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if issubclass(expected, PurePath):
        return isinstance(value, (str, PurePath))
    if expected in (str, bool, list, dict, tuple, set):
        return isinstance(value, expected)
    return True  # a class of the component's own: trusted


def _describe(expected: Any) -> str:
    if isinstance(expected, type):
        return expected.__name__
    return str(expected).replace("typing.", "")
