"""Redaction rules for secrets in configs, commands and records (issue 14)."""

from __future__ import annotations

from retbench import RunConfig, evaluate
from retbench.component import Component
from retbench.reporting.redaction import REDACTED, is_secret, redact, redact_command
from retbench.testing import OracleRetriever, make_plugin_manager
import retbench


def test_secret_names_and_look_alikes():
    assert all(is_secret(n) for n in ("api_key", "apikey", "token", "hf_token", "password", "db_password",
                                      "secret", "credentials", "secret_key"))
    assert not any(is_secret(n) for n in ("max_new_tokens", "pad_token", "tokenizer", "key", "sort_key",
                                          "passage_prefix", "k1"))
    assert is_secret("org", extra=("org",))


def test_redact_keeps_none_and_nested_values():
    assert redact({"a": {"api_key": "x", "token": None}, "b": [{"password": "p"}]}) == \
        {"a": {"api_key": REDACTED, "token": None}, "b": [{"password": REDACTED}]}
    assert redact_command("retbench run --retriever-arg 'password=a b' --k 3") == \
        f"retbench run --retriever-arg password={REDACTED} --k 3"


def test_a_declared_secret_parameter_is_redacted_in_the_record_and_absent_from_cache_keys(retbench_cache):
    class Keyed(OracleRetriever, Component):
        name = "keyed"
        secret_params = ("org",)

        def __init__(self, org: str = "") -> None:
            super().__init__()
            self.org = org

    class Plugin:
        @retbench.hookimpl
        def retbench_register_retrievers(self, register):
            register(Keyed)

    pm = make_plugin_manager(Plugin())
    first = evaluate(RunConfig(dataset="mock", retriever="keyed", retriever_args={"org": "hush"}), pm=pm,
                     cache=retbench_cache)
    other = evaluate(RunConfig(dataset="mock", retriever="keyed", retriever_args={"org": "other"}), pm=pm,
                     cache=retbench_cache)
    assert other.cached and other.run_id == first.run_id, "a secret does not change results"
    assert first.config["retriever_args"]["org"] == REDACTED
    assert first.components["retriever"]["params"]["org"] == REDACTED
    assert "hush" not in first.command
    for path in retbench_cache.home.rglob("*"):
        assert not path.is_file() or b"hush" not in path.read_bytes(), path
