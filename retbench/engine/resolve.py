"""Look named components up in the registries and instantiate them with their parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retbench.engine.capabilities import check_generator, hand_augment_generator, wants_augment_generator
from retbench.component import build, constructor_parameters, params_of
from retbench.engine.config import RunConfig
from retbench.errors import ConfigError
from retbench.interfaces import missing_members
from retbench.host.factory import ComponentFactory, hand_component_factory
from retbench.reporting.redaction import redact, secret_params
from retbench.host.manager import RetbenchPluginManager
from retbench.host.registry import Registries

DEFAULT_INJECTOR = "in-context"
DEFAULT_GENERATOR = "hf"


@dataclass
class Components:
    dataset: Any
    retriever: Any | None
    reader: Any | None
    injector: Any | None
    negatives: Any | None
    described: dict[str, dict[str, Any]]
    generator: Any | None = None
    augmenters: list[Any] = field(default_factory=list)
    augment_generator: Any | None = None  # writes training data; the run's generator unless --augment-generator
    built: dict[str, Any] = field(default_factory=dict)
    reranker: Any | None = None

    def add_fingerprints(self) -> None:
        """Describe every component's fingerprint (resolved model revisions, ...). Separate from
        building because a fingerprint may resolve or convert a model: it comes after the whole
        configuration has been checked."""
        add_fingerprints(self.described, self.built)


def add_fingerprints(described: dict[str, dict[str, Any]], built: dict[str, Any]) -> None:
    for role, instance in built.items():
        fingerprint = getattr(instance, "fingerprint", None)
        if callable(fingerprint) and "fingerprint" not in described[role]:
            described[role]["fingerprint"] = fingerprint()


def _make(
    kind: str,
    role: str,
    name: str | None,
    params: dict[str, Any],
    registries: Registries,
    pm: RetbenchPluginManager,
    described: dict[str, dict[str, Any]],
    built: dict[str, Any] | None = None,
) -> Any | None:
    """Instantiate a registered component, check its settings (``validate()``, before any model
    loads) and describe it for the record; its fingerprint is added later (``add_fingerprints``)."""
    if not name:
        return None
    entry = registries[kind].entry(name)
    instance = build(entry.cls, params, kind=role)
    missing = missing_members(kind, instance)
    if missing:
        raise ConfigError(f"{role} '{entry.name}' (plugin '{entry.plugin}') does not fulfil the {kind[:-1].replace('_', ' ')} "
                          f"contract: it lacks {', '.join(missing)} (see retbench/interfaces.py)")
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate()
    dist = pm.distributions.get(entry.plugin, ("", ""))
    described[role] = {
        "name": entry.name,
        "version": entry.version,
        "params": redact(params_of(instance), secret_params(entry.cls)),
        "plugin": entry.plugin,
        "distribution": dist[0],
        "distribution_version": dist[1],
    }
    if built is None:
        add_fingerprints(described, {role: instance})
    else:
        built[role] = instance
    return instance


def make_dataset(
    spec: str,
    *,
    data_dir: str | None,
    params: dict[str, Any],
    registries: Registries,
    pm: RetbenchPluginManager,
    described: dict[str, dict[str, Any]],
) -> Any:
    """``name`` or ``name:LOCATION`` (``beir:/path``); ``--data-dir`` goes to loaders taking it."""
    name, _, location = spec.partition(":")
    if spec in registries.datasets:
        name, location = spec, ""
    accepted = constructor_parameters(registries.datasets.get(name))
    params = dict(params)
    if location:
        if "location" not in accepted:
            raise ConfigError(f"dataset '{name}' takes no location (got ':{location}')")
        params["location"] = location
    if data_dir and "data_dir" in accepted:
        params["data_dir"] = data_dir
    return _make("datasets", "dataset", name, params, registries, pm, described)


def resolve(config: RunConfig, registries: Registries, pm: RetbenchPluginManager, *,
            fingerprints: bool = True) -> Components:
    """Look every named component up, instantiate it with its parameters and check them.
    ``fingerprints=False`` leaves the fingerprints to ``Components.add_fingerprints``."""
    described: dict[str, dict[str, Any]] = {}
    built: dict[str, Any] = {}
    dataset = make_dataset(config.dataset, data_dir=config.data_dir, params=config.dataset_args,
                            registries=registries, pm=pm, described=described)

    def make(kind: str, role: str, name: str | None, params: dict[str, Any]) -> Any | None:
        return _make(kind, role, name, dict(params), registries, pm, described, built)

    retriever = make("retrievers", "retriever", config.retriever, config.retriever_args)
    reranker = make("rerankers", "reranker", config.reranker, config.reranker_args)
    reader = make("readers", "reader", config.reader, config.reader_args)
    injector_name = config.injector
    if reader is not None and not injector_name:
        injector_name = getattr(reader, "injector", None) or DEFAULT_INJECTOR
    injector = make("injectors", "injector", injector_name, config.injector_args)
    negatives_name = config.negatives
    if retriever is not None and config.fit_split and not negatives_name:
        negatives_name = getattr(retriever, "default_negatives", None)
    negatives = make("negative_samplers", "negatives", negatives_name, config.negatives_args)
    augmenters = _augmenters(config, registries, pm, described, built)
    data_users = [reader, injector, negatives]
    writes_data = any(getattr(a, "uses_generator", True) for a in augmenters) or wants_augment_generator(data_users)
    generator_name = config.generator
    if reader is not None and not generator_name:
        generator_name = getattr(reader, "default_generator", None)
    if not generator_name and writes_data:
        generator_name = config.augment_generator or DEFAULT_GENERATOR
    generator = make("generators", "generator", generator_name, config.generator_args)
    if generator is not None:
        roles = [("reader", reader), ("injector", injector), ("negatives", negatives),
                 *(("augmenter", a) for a in augmenters)]
        check_generator(roles, generator, alternatives=[e.cls for e in registries["generators"]])
        if hasattr(reader, "set_generator"):
            reader.set_generator(generator)
        elif not writes_data:
            user = f"reader '{config.reader}' does not use one" if reader is not None else "there is no --reader"
            raise ConfigError(f"--generator '{generator_name}' given, but {user}")
    augment_generator = generator
    if config.augment_generator:
        if not writes_data:
            raise ConfigError(f"--augment-generator '{config.augment_generator}' given, but no component of this "
                              "run writes training data with a generator")
        if (config.augment_generator, config.augment_generator_args) != (generator_name, config.generator_args):
            augment_generator = make("generators", "augment-generator", config.augment_generator,
                                     config.augment_generator_args)
    hand_augment_generator(data_users, augment_generator)
    hand_component_factory(built.values(), ComponentFactory(registries))  # before fingerprints: a hybrid's name members
    components = Components(dataset, retriever, reader, injector, negatives, described, generator, augmenters,
                            augment_generator, built, reranker)
    if fingerprints:
        components.add_fingerprints()
    return components


def _augmenters(config: RunConfig, registries: Registries, pm: RetbenchPluginManager,
                described: dict[str, dict[str, Any]], built: dict[str, Any]) -> list[Any]:
    """``--augment a,b``: each augmenter gets the ``--augment-arg`` values its constructor takes."""
    names = [n.strip() for n in (config.augment or "").split(",") if n.strip()]
    if names and not config.fit_split:
        raise ConfigError("--augment adds training data: give --fit-split too")
    made = []
    for name in names:
        accepted = constructor_parameters(registries["augmenters"].entry(name).cls)
        params = {k: v for k, v in config.augment_args.items() if k in accepted}
        made.append(_make("augmenters", f"augmenter:{name}", name, params, registries, pm, described, built))
    unused = sorted(set(config.augment_args) - {p for a in made for p in constructor_parameters(type(a))})
    if unused:
        raise ConfigError(f"--augment-arg {', '.join(unused)}: no augmenter among {names} takes it")
    return made
