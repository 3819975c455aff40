"""pytest fixtures for plugin authors (installed through the ``pytest11`` entry point).

- ``retbench_pm``: a fresh plugin manager with the core components and the mocks; add the
  plugin under test with ``retbench_pm.register(my_plugin, name="my-plugin")``.
- ``retbench_cache``: a :class:`retbench.engine.cache.Cache` in a temporary folder, with
  ``RETBENCH_HOME`` pointing at it for the duration of the test.
- ``retbench_tiny_bert`` / ``retbench_tiny_llama``: folders holding tiny random models with a
  tokenizer (session-scoped; see :mod:`retbench.testing.tiny_models`).

retbench itself is imported inside the fixtures, so merely having retbench installed does
not import it into every pytest session.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def retbench_pm() -> Any:
    from retbench.testing import make_plugin_manager

    return make_plugin_manager()


@pytest.fixture
def retbench_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from retbench.engine.cache import HOME_ENV, Cache

    home = tmp_path / "retbench-home"
    monkeypatch.setenv(HOME_ENV, str(home))
    return Cache(home)


@pytest.fixture(scope="session")
def retbench_tiny_bert(tmp_path_factory: Any) -> Any:
    from retbench.testing.tiny_models import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def retbench_tiny_llama(tmp_path_factory: Any) -> Any:
    from retbench.testing.tiny_models import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
