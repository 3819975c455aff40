"""Plugin manager factory: hook specs, entry points, single-file plugins, a block list."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

import pluggy

from retbench.host import hookspecs

ENTRY_POINT_GROUP = "retbench"
BLOCK_ENV = "RETBENCH_BLOCK_PLUGINS"
PLUGINS_DIR_ENV = "RETBENCH_PLUGINS_DIR"


class RetbenchPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and which ones failed."""

    def __init__(self) -> None:
        super().__init__("retbench")
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        self.load_failures: dict[str, str] = {}

    def register_isolated(self, plugin: object, name: str) -> bool:
        """Register ``plugin``; record (rather than raise) a validation failure."""
        try:
            self.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self.load_failures[name] = f"{type(exc).__name__}: {exc}"
            return False
        return True


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
    plugins_dir: str | Path | None = None,
) -> RetbenchPluginManager:
    """Build a fresh plugin manager.

    Built-in components are plugins found through the ``retbench`` entry-point group exactly
    like third-party ones. A plugin that fails to import or validate is recorded in
    ``pm.load_failures`` and the others still load. ``block`` (and the comma-separated
    ``RETBENCH_BLOCK_PLUGINS``) names entry points to skip; ``plugins_dir`` (or
    ``RETBENCH_PLUGINS_DIR``) adds every ``*.py`` file in that folder as a plugin.
    """
    pm = RetbenchPluginManager()
    blocked = {*block, *filter(None, os.environ.get(BLOCK_ENV, "").split(","))}
    for name in blocked:
        pm.set_blocked(name.strip())
    if load_entrypoints:
        _load_entrypoints(pm)
    folder = plugins_dir or os.environ.get(PLUGINS_DIR_ENV)
    if folder:
        _load_plugins_dir(pm, Path(folder))
    _drop_invalid(pm)
    return pm


def _load_entrypoints(pm: RetbenchPluginManager) -> None:
    for ep in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        if ep.dist is not None:  # known for failed plugins too, so `retbench list` names them
            pm.distributions[ep.name] = (ep.dist.metadata["Name"], ep.dist.version)
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the rest
            pm.load_failures[ep.name] = f"import failed: {type(exc).__name__}: {exc}"
            continue
        pm.register_isolated(plugin, ep.name)


def _load_plugins_dir(pm: RetbenchPluginManager, folder: Path) -> None:
    if not folder.is_dir():
        pm.load_failures[str(folder)] = "plugins directory does not exist"
        return
    for path in sorted(folder.glob("*.py")):
        name = f"{path.stem}"
        if pm.is_blocked(name):
            continue
        try:
            spec = importlib.util.spec_from_file_location(f"retbench_local_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001
            pm.load_failures[name] = f"{path}: {type(exc).__name__}: {exc}"
            continue
        if pm.register_isolated(module, name):
            pm.distributions[name] = (str(path), "")


def _drop_invalid(pm: RetbenchPluginManager) -> None:
    """``check_pending``, but unregister the plugins with unknown hooks instead of failing."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            pm.load_failures[name] = f"unknown hook: {exc}"
            pm.unregister(exc.plugin)
