"""Constructor discipline shared by components, and building one from user parameters."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping
from typing import Any

from retbench.errors import ConfigError


class Component:
    """Optional base class: ``get_params`` and ``repr`` from the constructor signature.

    As in scikit-learn, ``__init__`` only stores its keyword arguments under the same names;
    anything learned is stored in attributes ending in ``_``.
    """

    name: str = ""
    version: str = "0"
    #: parameters added after the component's cache keys were in use: left out of
    #: ``get_params`` (so of keys and records) while at their defaults, so old keys stay valid
    late_params: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        params = {p: getattr(self, p) for p in constructor_parameters(type(self))}
        if self.late_params:
            signature = inspect.signature(type(self).__init__).parameters
            for name in self.late_params:
                if name in params and params[name] == signature[name].default:
                    del params[name]
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def constructor_parameters(cls: type) -> list[str]:
    signature = inspect.signature(cls.__init__)
    return [
        p.name
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def params_of(component: object) -> dict[str, Any]:
    """The parameters identifying a component, for cache keys and records."""
    getter = getattr(component, "get_params", None)
    if callable(getter):
        return dict(getter())
    return {p: getattr(component, p, None) for p in constructor_parameters(type(component))}


def without_search_time_params(identity: dict[str, Any] | None, component: object) -> dict[str, Any] | None:
    """``identity`` with the component's search-time parameters at their defaults.

    A retriever lists in ``search_time_params`` the parameters that change only how it searches
    an index, not what the index holds (a dense retriever's Matryoshka ``dim``): the fit and index
    keys use this identity, so one trained model and one index serve every value of them.
    """
    names = tuple(getattr(component, "search_time_params", ()) or ())
    if identity is None or not names:
        return identity
    signature = inspect.signature(type(component).__init__).parameters
    params = dict(identity.get("params") or {})
    for name in names:
        if name not in signature or signature[name].default is inspect.Parameter.empty:
            raise ConfigError(f"{type(component).__name__}.search_time_params names '{name}', "
                              "which is not a constructor parameter with a default")
        params[name] = signature[name].default
    return {**identity, "params": params}


def search_time_params(component: object) -> dict[str, Any]:
    """The component's search-time parameters that differ from their defaults (see above)."""
    signature = inspect.signature(type(component).__init__).parameters
    values = {}
    for name in getattr(component, "search_time_params", ()) or ():
        value = getattr(component, name, None)
        if name in signature and value != signature[name].default:
            values[name] = value
    return values


def component_identity(component: object) -> dict[str, Any]:
    """Name, parameters and fingerprint (resolved model, ...) of a component: what a cache key
    needs to tell its outputs apart."""
    fingerprint = getattr(component, "fingerprint", None)
    return {"name": getattr(component, "name", type(component).__name__), "params": params_of(component),
            "fingerprint": fingerprint() if callable(fingerprint) else None}


def parse_value(text: str) -> Any:
    """``--x-arg key=value`` values: JSON literals (numbers, booleans, lists), else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Iterable[str], *, option: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} expects key=value, got '{item}'")
        params[key.strip()] = parse_value(value)
    return params


def build(cls: type, params: Mapping[str, Any], *, kind: str) -> Any:
    """Instantiate ``cls`` with ``params``; an unknown parameter names the known ones."""
    accepted = constructor_parameters(cls)
    takes_any = any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()
    )
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        raise ConfigError(
            f"{kind} '{cls.name}' has no parameter {', '.join(repr(u) for u in unknown)} "
            f"(parameters: {', '.join(accepted) or 'none'})"
        )
    from retbench.engine.typecheck import check_params

    check_params(cls, dict(params), kind=kind)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind} '{cls.name}': {exc}") from exc
