"""Rows for ``retbench list`` and ``retbench datasets list``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retbench.host.manager import RetbenchPluginManager
from retbench.host.registry import KINDS, Registries


def plugin_rows(pm: RetbenchPluginManager, registries: Registries, *, hook: str | None = None
                ) -> list[dict[str, Any]]:
    """One row per plugin: distribution, version, hooks, and the names it registered."""
    if hook is not None:
        _check_hook(pm, hook)
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda x: x[0]):
        if name in registries.failures:  # listed below with its error
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        if hook and hook not in hooks and f"retbench_{hook}" not in hooks:
            continue
        registers = [
            f"{kind[:-1].replace('_', ' ')}: {entry.name}"
            + (f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else "")
            for kind in KINDS
            for entry in registries[kind]
            if entry.plugin == name
        ]
        observed = [h.removeprefix("retbench_") for h in hooks if h in OBSERVER_HOOKS]
        if observed:
            registers.append(f"observer: {', '.join(observed)}")
        if "retbench_register_commands" in hooks:
            registers.append("commands")
        dist, version = pm.distributions.get(name, ("", ""))
        rows.append({"plugin": name, "distribution": dist, "version": version, "hooks": hooks,
                     "registers": registers, "status": "loaded"})
    for name, why in sorted({**pm.load_failures, **registries.failures}.items()):
        if hook is None:
            dist, version = pm.distributions.get(name, ("", ""))
            rows.append({"plugin": name, "distribution": dist, "version": version, "hooks": [],
                         "registers": [f"FAILED: {why}"], "status": "failed"})
    return rows


OBSERVER_HOOKS = ("retbench_run_start", "retbench_run_finish")


def _check_hook(pm: RetbenchPluginManager, hook: str) -> None:
    """``--hook`` must name a hook (with or without ``retbench_``): a typo is an error, not an
    empty table."""
    import difflib

    from retbench.errors import ConfigError

    known = sorted(name for name in vars(pm.hook) if name.startswith("retbench_"))
    if hook in known or f"retbench_{hook}" in known:
        return
    short = [k.removeprefix("retbench_") for k in known]
    close = difflib.get_close_matches(hook.removeprefix("retbench_"), short, n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"unknown hook '{hook}'{hint} (hooks: {', '.join(short)})")


def _downloadable(source: object) -> bool:
    """Whether a dataset's ``source`` is something retbench downloads (a Source, a URL), not a
    description of where the data came from."""
    from retbench.data.download import Source

    return isinstance(source, Source) or (isinstance(source, str) and source.startswith(("http://", "https://")))


def dataset_rows(registries: Registries, *, workdir: Path) -> list[dict[str, Any]]:
    """Known datasets: description, licence, and what the cache holds (downloadable ones)."""
    rows = []
    for entry in registries.datasets:
        doc = (entry.cls.__doc__ or "").strip().splitlines()
        cached = getattr(entry.cls, "cached_bytes", None)
        size = cached(workdir=workdir) if cached else None
        rows.append({"name": entry.name, "plugin": entry.plugin, "version": entry.version,
                     "description": doc[0] if doc else "", "licence": getattr(entry.cls, "licence", ""),
                     "downloadable": _downloadable(getattr(entry.cls, "source", None)), "cached_bytes": size})
    return rows
