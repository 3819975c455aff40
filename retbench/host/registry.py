"""Name -> class registries filled through the ``retbench_register_*`` hooks."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from retbench.errors import RetbenchError, UnknownComponentError

if TYPE_CHECKING:
    from retbench.host.manager import RetbenchPluginManager

T = TypeVar("T")

KINDS = (
    "datasets",
    "retrievers",
    "rerankers",
    "readers",
    "injectors",
    "negative_samplers",
    "augmenters",
    "generators",
    "metrics",
)


class DuplicateNameError(RetbenchError):
    """Two registrations claim one name."""


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    plugin: str
    aliases: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return str(getattr(self.cls, "version", ""))


@dataclass
class Registry(Generic[T]):
    """Classes of one component kind, by name and alias."""

    kind: str
    _entries: dict[str, Entry] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def add(self, cls: type, aliases: tuple[str, ...] = (), *, plugin: str = "?") -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise RetbenchError(
                f"plugin '{plugin}' registered {cls!r} as a {self.kind[:-1]} without a "
                "'name' class variable"
            )
        if not hasattr(cls, "version"):
            raise RetbenchError(
                f"plugin '{plugin}' registered {self.kind[:-1]} '{name}' without a "
                "'version' class variable"
            )
        for key in (name, *aliases):
            owner = self._owner(key)
            if owner is not None:
                raise DuplicateNameError(
                    f"{self.kind[:-1]} name '{key}' is registered twice: by plugin "
                    f"'{owner.plugin}' and by plugin '{plugin}'"
                )
        self._entries[name] = Entry(name=name, cls=cls, plugin=plugin, aliases=tuple(aliases))
        for alias in aliases:
            self._aliases[alias] = name

    def _owner(self, key: str) -> Entry | None:
        if key in self._entries:
            return self._entries[key]
        if key in self._aliases:
            return self._entries[self._aliases[key]]
        return None

    def entry(self, name: str) -> Entry:
        found = self._owner(name)
        if found is None:
            raise UnknownComponentError(self.unknown_message(name))
        return found

    def get(self, name: str) -> type:
        return self.entry(name).cls

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._owner(name) is not None

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def unknown_message(self, name: str) -> str:
        singular = self.kind[:-1].replace("_", " ")
        known = sorted([*self._entries, *self._aliases])
        if not known:
            return f"unknown {singular} '{name}': no {self.kind.replace('_', ' ')} are installed"
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {singular} '{name}'{hint} (available: {', '.join(known)})"


@dataclass
class Registries:
    """One registry per component kind, plus the plugins whose registration failed."""

    by_kind: dict[str, Registry] = field(
        default_factory=lambda: {kind: Registry(kind) for kind in KINDS}
    )
    failures: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> Registry:
        return self.by_kind[kind]

    @property
    def datasets(self) -> Registry:
        return self.by_kind["datasets"]

    @property
    def retrievers(self) -> Registry:
        return self.by_kind["retrievers"]

    @property
    def metrics(self) -> Registry:
        return self.by_kind["metrics"]


# The distributions of retbench and its bundled plugins: on a name clash they keep the name and
# the other plugin is the one isolated, whatever the order the plugins were found in.
BUNDLED = ("retbench", "retbench-bm25", "retbench-dense", "retbench-readers", "retbench-parametric",
           "retbench-synth")


def collect_registries(pm: RetbenchPluginManager) -> Registries:
    """Call every plugin's registration hooks, one plugin at a time.

    Calling the implementations one by one attributes each class to its plugin (for
    ``retbench list``) and keeps a plugin whose hook raises from taking the others down: its
    error is kept in ``failures`` and nothing it registered is used. A plugin claiming a name
    another plugin (bundled ones first, then in loading order) already holds is isolated the
    same way, so one clash never stops the unrelated commands and runs.
    """
    registries = Registries()
    order = [name for name, _ in pm.list_name_plugin()]
    staged: dict[str, list[tuple[str, type, tuple[str, ...]]]] = {}
    for kind in KINDS:
        caller = getattr(pm.hook, f"retbench_register_{kind}")
        for impl in caller.get_hookimpls():
            plugin = impl.plugin_name
            if plugin in registries.failures:
                continue
            made: list[tuple[type, tuple[str, ...]]] = []

            def register(cls: type, aliases: tuple[str, ...] = (), _made=made) -> None:
                _made.append((cls, tuple(aliases)))

            try:
                impl.function(register=register)
                scratch = Registry(kind)
                for cls, aliases in made:
                    scratch.add(cls, aliases, plugin=plugin)
            except Exception as exc:  # noqa: BLE001 - isolate one plugin's failure
                registries.failures[plugin] = f"{type(exc).__name__}: {exc}"
                staged.pop(plugin, None)
                continue
            staged.setdefault(plugin, []).extend((kind, cls, aliases) for cls, aliases in made)

    def priority(plugin: str) -> tuple[bool, int]:
        dist = pm.distributions.get(plugin, ("", ""))[0]
        return dist not in BUNDLED, order.index(plugin) if plugin in order else len(order)

    for plugin in sorted(staged, key=priority):
        clash = _first_clash(registries, staged[plugin])
        if clash is not None:
            message, owner = clash
            registries.failures[plugin] = (f"{message}; its registrations are ignored (rename them, or pass "
                                           f"--block-plugin {plugin} or --block-plugin {owner})")
            continue
        for kind, cls, aliases in staged[plugin]:
            registries[kind].add(cls, aliases, plugin=plugin)
    return registries


def _first_clash(registries: Registries, items: list[tuple[str, type, tuple[str, ...]]]
                 ) -> tuple[str, str] | None:
    """The first name among ``items`` that another plugin already registered: (message, owner)."""
    for kind, cls, aliases in items:
        for key in (cls.name, *aliases):
            owner = registries[kind]._owner(key)
            if owner is not None:
                return (f"{kind[:-1].replace('_', ' ')} name '{key}' is already registered by plugin "
                        f"'{owner.plugin}'", owner.plugin)
    return None
