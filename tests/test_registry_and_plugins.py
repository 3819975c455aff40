from __future__ import annotations

import pytest

import retbench
from retbench.errors import RetbenchError, UnknownComponentError
from retbench.host.manager import get_plugin_manager
from retbench.host.registry import DuplicateNameError, Registry, collect_registries
from retbench.testing import make_plugin_manager


def component(name: str) -> type:
    return type(name.title().replace("-", ""), (retbench.Component,), {"name": name, "version": "1"})


def test_unknown_name_lists_available_and_suggests_close_matches():
    registry = Registry("retrievers")
    for name in ("bm25", "dpr", "ance"):
        registry.add(component(name), plugin="p")
    with pytest.raises(UnknownComponentError) as info:
        registry.get("bm52")
    message = str(info.value)
    assert "did you mean 'bm25'" in message
    assert "available: ance, bm25, dpr" in message


def test_duplicate_names_and_aliases_are_errors():
    registry = Registry("retrievers")
    registry.add(component("bm25"), aliases=("okapi",), plugin="first")
    with pytest.raises(DuplicateNameError, match="'first' and by plugin 'second'"):
        registry.add(component("bm25"), plugin="second")
    with pytest.raises(DuplicateNameError):
        registry.add(component("okapi"), plugin="second")


def test_registration_needs_name_and_version():
    registry = Registry("retrievers")
    with pytest.raises(RetbenchError, match="without a 'name'"):
        registry.add(type("NoName", (), {"version": "1"}), plugin="p")
    with pytest.raises(RetbenchError, match="without a 'version'"):
        registry.add(type("NoVersion", (), {"name": "x"}), plugin="p")


def test_two_plugins_claiming_one_name_is_reported_with_the_fix():
    class A:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(component("same"))

    class B(A):
        pass

    registries = collect_registries(make_plugin_manager(A(), B()))
    assert registries.retrievers.entry("same").plugin == "test-plugin-0"
    assert "--block-plugin test-plugin-1" in registries.failures["test-plugin-1"]


def test_a_raising_registration_hook_does_not_take_the_others_down():
    class Broken:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(component("half"))
            raise RuntimeError("boom")

    registries = collect_registries(make_plugin_manager(Broken()))
    assert "half" not in registries.retrievers
    assert "oracle" in registries.retrievers
    assert "boom" in registries.failures["test-plugin-0"]


def test_plugins_dir_failures_are_isolated(tmp_path):
    (tmp_path / "good.py").write_text(
        "import retbench\n"
        "class Good(retbench.Component):\n    name = 'good'\n    version = '1'\n"
        "@retbench.hookimpl\ndef retbench_register_retrievers(register):\n    register(Good)\n"
    )
    (tmp_path / "broken.py").write_text("raise ImportError('missing dependency xyz')\n")
    (tmp_path / "typo.py").write_text(
        "import retbench\n@retbench.hookimpl\ndef retbench_register_retreivers(register):\n    pass\n"
    )
    pm = get_plugin_manager(load_entrypoints=False, plugins_dir=tmp_path)
    assert "missing dependency xyz" in pm.load_failures["broken"]
    assert "unknown hook" in pm.load_failures["typo"]
    assert "good" in collect_registries(pm).retrievers


def test_block_list_skips_entry_points(monkeypatch):
    assert get_plugin_manager().has_plugin("core")
    assert not get_plugin_manager(block=["core"]).has_plugin("core")
    monkeypatch.setenv("RETBENCH_BLOCK_PLUGINS", "core")
    assert not get_plugin_manager().has_plugin("core")


def test_builtin_components_are_found_through_the_entry_point():
    pm = get_plugin_manager()
    assert pm.distributions["core"][0] == "retbench"
    registries = collect_registries(pm)
    assert {"beir", "sample"} <= set(registries.datasets.names())
    assert registries.datasets.entry("sample").plugin == "core"
