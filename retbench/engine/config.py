"""The configuration of one run: what the CLI flags and ``--config run.toml`` fill in."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from retbench.errors import ConfigError

ARG_KINDS = ("retriever", "reader", "injector", "dataset", "negatives", "generator", "augment",
             "augment_generator", "reranker")
FIT_ROLES = ("retriever", "reader", "injector")
DEFAULT_RERANK_K = 100  # candidates per query a reranker re-scores when --rerank-k is not given
#: fields added after run ids were in use: left out of ``to_dict`` (so of run ids and records)
#: while at their defaults, so old run ids stay valid
LATE_FIELDS = ("fit_only", "reranker", "rerank_k", "reranker_args")


@dataclass
class RunConfig:
    dataset: str
    retriever: str | None = None
    reader: str | None = None
    injector: str | None = None
    split: str | None = None
    k: int = 100
    read_k: int | None = None
    limit: int | None = None
    sample: int | None = None
    per_type: int | None = None
    metrics: list[str] | None = None
    data_dir: str | None = None
    seed: int = 0
    fit_split: str | None = None
    fit_only: str | None = None  # comma-separated FIT_ROLES to train; None: every trainable one
    negatives: str | None = None
    generator: str | None = None
    augment: str | None = None
    augment_generator: str | None = None
    augment_ratio: float | None = None
    shard_size: int = 500
    reranker: str | None = None
    rerank_k: int | None = None  # candidates per query the reranker re-scores; None: DEFAULT_RERANK_K
    retriever_args: dict[str, Any] = field(default_factory=dict)
    reader_args: dict[str, Any] = field(default_factory=dict)
    injector_args: dict[str, Any] = field(default_factory=dict)
    dataset_args: dict[str, Any] = field(default_factory=dict)
    negatives_args: dict[str, Any] = field(default_factory=dict)
    generator_args: dict[str, Any] = field(default_factory=dict)
    augment_args: dict[str, Any] = field(default_factory=dict)
    augment_generator_args: dict[str, Any] = field(default_factory=dict)
    reranker_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"--k must be at least 1, got {self.k}")
        for option in ("limit", "sample", "per_type", "shard_size", "read_k", "rerank_k"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise ConfigError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
        if self.augment_ratio is not None and self.augment_ratio <= 0:
            raise ConfigError(f"--augment-ratio must be positive, got {self.augment_ratio}")
        if not self.retriever and not self.reader:
            raise ConfigError("a run needs --retriever, --reader, or both")
        unknown = [r for r in self.fit_roles or () if r not in FIT_ROLES]
        if unknown:
            raise ConfigError(f"--fit-only: unknown role '{unknown[0]}' (choose from {', '.join(FIT_ROLES)})")
        if self.reranker and not self.retriever:
            raise ConfigError(f"--reranker '{self.reranker}' re-scores what a retriever found: give --retriever too")
        if self.rerank_k is not None and not self.reranker:
            raise ConfigError("--rerank-k given, but no --reranker")
        if self.reranker_args and not self.reranker:
            raise ConfigError("--reranker-arg given, but no --reranker")
        if self.fit_only is not None and not self.fit_split:
            raise ConfigError("--fit-only needs --fit-split (the split to train on)")

    @property
    def fit_roles(self) -> list[str] | None:
        """The roles ``--fit-only`` names, or None (train every trainable component)."""
        if self.fit_only is None:
            return None
        return [r.strip() for r in self.fit_only.split(",") if r.strip()]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for name in LATE_FIELDS:
            if values[name] in (None, {}):
                del values[name]
        return values

    def command(self) -> str:
        """The ``retbench run`` command line that reproduces this configuration."""
        parts = ["retbench", "run"]
        defaults = RunConfig(dataset=self.dataset, retriever=self.retriever or "x")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_args"):
                flag = "--" + f.name[: -len("_args")].replace("_", "-") + "-arg"
                for key, item in sorted(value.items()):
                    parts += [flag, f"{key}={_literal(item)}"]
            elif f.name == "metrics":
                for metric in value or ():
                    parts += ["--metric", metric]
            elif f.name in ("dataset", "retriever", "reader") or value != getattr(defaults, f.name):
                if value is not None:
                    parts += ["--" + f.name.replace("_", "-"), str(value)]
        return shlex.join(parts)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a run configuration file; keys are RunConfig field names.

    ``[retriever_args]`` style tables (or ``retriever_args = {...}``) give component
    parameters. An unknown key is an error naming the file and key.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if isinstance(data.get("run"), dict):
        data = {**data.pop("run"), **data}
    known = {f.name for f in fields(RunConfig)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{path}: unknown key '{key}' (known: {', '.join(sorted(known))})"
            )
    return data
