"""The built-in plugins use retbench's public API only (issue 19): the names ``retbench``
exports and the testing kit, never a core module behind them; another plugin's package only
when the distribution declares it as a dependency."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import retbench

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
PUBLIC_MODULES = {"retbench", "retbench.testing"}


def imported_modules(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, also inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def declared_packages(distribution: Path) -> set[str]:
    """The import names of the plugin packages a distribution depends on (and its own)."""
    project = tomllib.loads((distribution / "pyproject.toml").read_text("utf-8"))["project"]
    names = {project["name"]} | {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0] for d in project.get("dependencies", [])}
    return {n.replace("-", "_") for n in names if n.startswith("retbench-")}


def test_plugins_import_only_public_names_and_declared_plugins():
    plugin_packages = {d.name.replace("-", "_") for d in PLUGINS.iterdir() if (d / "pyproject.toml").is_file()}
    problems = []
    for distribution in sorted(d for d in PLUGINS.iterdir() if (d / "pyproject.toml").is_file()):
        allowed = declared_packages(distribution)
        for path in sorted((distribution / "src").rglob("*.py")):
            for line, module, names in imported_modules(path):
                top = module.split(".")[0]
                where = f"{path.relative_to(PLUGINS)}:{line}"
                if top == "retbench" and module not in PUBLIC_MODULES:
                    problems.append(f"{where}: imports the core module {module}")
                elif module == "retbench":
                    problems += [f"{where}: retbench has no public name {n}" for n in names
                                 if n not in retbench.__all__ and n != "*"]
                elif top in plugin_packages and top not in allowed:
                    problems.append(f"{where}: imports {top}, which {distribution.name} does not depend on")
    assert not problems, "\n".join(problems)


def test_every_public_name_resolves():
    for name in retbench.__all__:
        assert getattr(retbench, name) is not None, name
