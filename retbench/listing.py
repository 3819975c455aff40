"""Rows for ``retbench list`` and ``retbench datasets list``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retbench.plugins import RetbenchPluginManager
from retbench.registry import KINDS, Registries


def plugin_rows(pm: RetbenchPluginManager, registries: Registries, *, hook: str | None = None
                ) -> list[dict[str, Any]]:
    """One row per plugin: distribution, version, hooks, and the names it registered."""
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
        dist, version = pm.distributions.get(name, ("", ""))
        rows.append({"plugin": name, "distribution": dist, "version": version, "hooks": hooks,
                     "registers": registers, "status": "loaded"})
    for name, why in sorted({**pm.load_failures, **registries.failures}.items()):
        if hook is None:
            dist, version = pm.distributions.get(name, ("", ""))
            rows.append({"plugin": name, "distribution": dist, "version": version, "hooks": [],
                         "registers": [f"FAILED: {why}"], "status": "failed"})
    return rows


def dataset_rows(registries: Registries, *, workdir: Path) -> list[dict[str, Any]]:
    """Known datasets: description, licence, and what the cache holds (downloadable ones)."""
    rows = []
    for entry in registries.datasets:
        doc = (entry.cls.__doc__ or "").strip().splitlines()
        cached = getattr(entry.cls, "cached_bytes", None)
        size = cached(workdir=workdir) if cached else None
        rows.append({"name": entry.name, "plugin": entry.plugin, "version": entry.version,
                     "description": doc[0] if doc else "", "licence": getattr(entry.cls, "licence", ""),
                     "downloadable": getattr(entry.cls, "source", None) is not None, "cached_bytes": size})
    return rows
