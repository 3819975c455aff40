"""Generator capabilities and the augment generator, on mock components."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from retbench import RunConfig, evaluate, hookimpl
from retbench.engine.capabilities import LORA, capabilities_of, check_generator
from retbench.cli import main
from retbench.component import Component
from retbench.errors import ConfigError
from retbench.host.registry import collect_registries
from retbench.engine.resolve import resolve
from retbench.testing import make_plugin_manager
from retbench.data.types import Answer


class Plain(Component):
    """A generator without LoRA; it counts what it was asked, to prove nothing ran."""

    name = "plain"
    version = "1"
    capabilities = frozenset({"prefix"})
    calls: ClassVar[list[str]] = []

    def __init__(self, tag: str = "") -> None:
        self.tag = tag

    def generate(self, prompts, *, max_new_tokens=8, prefix=""):
        Plain.calls.append(self.name)
        return [f"{self.name}{self.tag}: {p[:20]}" for p in prompts]

    def loglikelihood(self, contexts, continuations):
        return [0.0 for _ in contexts]


class Lora(Plain):
    name = "lora-gen"
    capabilities = frozenset({LORA, "prefix"})


class Parametric(Component):
    """A reader that answers through LoRA merging and writes training data with a generator."""

    name = "parametric"
    version = "1"
    generator_requires = frozenset({LORA})

    def __init__(self) -> None:
        pass

    def set_generator(self, generator: Any) -> None:
        self.generator_ = generator

    def set_augment_generator(self, generator: Any) -> None:
        self.augment_generator_ = generator

    def answer(self, queries, injections):
        data = self.augment_generator_.generate(list(queries.values()))
        answers = self.generator_.generate(list(queries.values()))
        return [Answer(qid=q, text=a, extra={"data": d}) for q, a, d in zip(queries, answers, data)]


class Plugin:
    @hookimpl
    def retbench_register_generators(self, register):
        register(Plain)
        register(Lora)

    @hookimpl
    def retbench_register_readers(self, register):
        register(Parametric)


@pytest.fixture(autouse=True)
def clear_calls():
    Plain.calls.clear()


def components(**config):
    pm = make_plugin_manager(Plugin())
    return resolve(RunConfig(dataset="mock", **config), collect_registries(pm), pm)


def test_a_missing_capability_fails_before_any_generation_naming_both_and_the_way_out(retbench_cache):
    pm = make_plugin_manager(Plugin())
    with pytest.raises(ConfigError) as error:
        evaluate(RunConfig(dataset="mock", retriever="oracle", reader="parametric", generator="plain"),
                 pm=pm, cache=retbench_cache)
    message = str(error.value)
    assert "\n" not in message and "reader 'parametric'" in message and "generator 'plain' cannot" in message
    assert "--generator lora-gen" in message and "--augment-generator plain" in message
    assert Plain.calls == []


def test_augment_generator_writes_the_data_while_the_run_generator_answers(retbench_cache):
    made = components(reader="parametric", generator="lora-gen", augment_generator="plain",
                      augment_generator_args={"tag": "!"})
    assert made.reader.generator_.name == "lora-gen" and made.reader.augment_generator_.name == "plain"
    assert made.reader.augment_generator_.tag == "!" and made.described["augment-generator"]["name"] == "plain"
    record = evaluate(RunConfig(dataset="mock", retriever="oracle", reader="parametric", generator="lora-gen",
                                augment_generator="plain"), pm=make_plugin_manager(Plugin()), cache=retbench_cache)
    assert record.components["augment-generator"]["name"] == "plain"


def test_without_augment_generator_the_run_generator_does_both():
    made = components(reader="parametric", generator="lora-gen")
    assert made.reader.augment_generator_ is made.reader.generator_ is made.generator
    same = components(reader="parametric", generator="lora-gen", augment_generator="lora-gen")
    assert same.reader.augment_generator_ is same.generator and "augment-generator" not in same.described


def test_augment_generator_without_a_data_writer_is_an_error():
    with pytest.raises(ConfigError, match="no component of this run writes training data"):
        components(retriever="oracle", augment_generator="plain")


def test_the_augment_generator_enters_the_answer_key(retbench_cache):
    pm = make_plugin_manager(Plugin())
    base = dict(dataset="mock", retriever="oracle", reader="parametric", generator="lora-gen")
    first = evaluate(RunConfig(**base), pm=pm, cache=retbench_cache)
    other = evaluate(RunConfig(**base, augment_generator="plain"), pm=pm, cache=retbench_cache)
    assert first.stages["answer"]["key"] != other.stages["answer"]["key"]


def test_capabilities_of_undeclared_generator_is_empty_and_components_without_needs_pass():
    assert capabilities_of(object()) == frozenset()
    check_generator([("reader", object()), ("injector", None)], Plain())


def test_cli_takes_augment_generator_and_its_args(monkeypatch):
    import retbench.cli.commands

    seen = {}
    monkeypatch.setattr(retbench.cli.commands, "_evaluate_all",
                        lambda state, configs, params, workers=None: seen.update(c=configs[0]))
    main(["run", "--dataset", "mock", "--reader", "parametric", "--augment-generator", "plain",
          "--augment-generator-arg", "tag=x"])
    config = seen["c"]
    assert config.augment_generator == "plain" and config.augment_generator_args == {"tag": "x"}
    assert "--augment-generator plain --augment-generator-arg tag=x" in config.command()
