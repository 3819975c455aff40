from __future__ import annotations

from pathlib import Path

import pytest

from retbench.testing.tiny_models import tiny_bert, tiny_llama


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("RETBENCH_OFFLINE", "1")


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
