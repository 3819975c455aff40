"""pytest fixtures for plugin authors (installed through the ``pytest11`` entry point).

- ``retbench_pm``: a fresh plugin manager with the core components and the mocks.
- ``retbench_cache``: a :class:`retbench.cache.Cache` in a temporary folder, with
  ``RETBENCH_HOME`` pointing at it for the duration of the test.

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
    from retbench.cache import HOME_ENV, Cache

    home = tmp_path / "retbench-home"
    monkeypatch.setenv(HOME_ENV, str(home))
    return Cache(home)
