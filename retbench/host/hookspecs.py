"""Every hook a retbench plugin can implement.

Rules (checked by the test suite): each spec has an empty body, full type hints, a docstring
with ``:param:`` lines, keyword arguments only, and the ``retbench_`` prefix. A spec may gain
optional arguments later; it is never renamed or removed.

Registration hooks receive a ``register(cls, aliases=())`` callable. ``cls`` is a class (never
an instance) with the class variables ``name`` and ``version``; nothing is instantiated while
plugins are listed, so plugin modules must stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from retbench.data.types import RunRecord

hookspec = pluggy.HookspecMarker("retbench")


class Register(Protocol):
    def __call__(self, cls: type, aliases: tuple[str, ...] = ()) -> None: ...


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------


@hookspec
def retbench_register_datasets(register: Register) -> None:
    """Register dataset classes (``Dataset`` protocol).

    :param register: call ``register(cls, aliases=())`` once per dataset class.
    """


@hookspec
def retbench_register_retrievers(register: Register) -> None:
    """Register retriever classes (``Retriever`` protocol).

    :param register: call ``register(cls, aliases=())`` once per retriever class.
    """


@hookspec
def retbench_register_rerankers(register: Register) -> None:
    """Register rerankers (``Reranker`` protocol): re-score a retriever's top candidates.

    :param register: call ``register(cls, aliases=())`` once per reranker class.
    """


@hookspec
def retbench_register_readers(register: Register) -> None:
    """Register reader classes (``Reader`` protocol).

    :param register: call ``register(cls, aliases=())`` once per reader class.
    """


@hookspec
def retbench_register_injectors(register: Register) -> None:
    """Register knowledge injectors (``Injector`` protocol): in-context, PRAG, DyPRAG, ...

    :param register: call ``register(cls, aliases=())`` once per injector class.
    """


@hookspec
def retbench_register_negative_samplers(register: Register) -> None:
    """Register negative samplers for retriever training (``NegativeSampler`` protocol).

    :param register: call ``register(cls, aliases=())`` once per sampler class.
    """


@hookspec
def retbench_register_augmenters(register: Register) -> None:
    """Register training-data augmenters (``Augmenter`` protocol).

    :param register: call ``register(cls, aliases=())`` once per augmenter class.
    """


@hookspec
def retbench_register_generators(register: Register) -> None:
    """Register text generators (``Generator`` protocol): local LMs or remote servers.

    :param register: call ``register(cls, aliases=())`` once per generator class.
    """


@hookspec
def retbench_register_metrics(register: Register) -> None:
    """Register metrics (``Metric`` protocol) beyond the ir-measures ones the core provides.

    :param register: call ``register(cls, aliases=())`` once per metric class.
    """


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


@hookspec
def retbench_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``retbench`` command line.

    :param cli: the top-level click group; call ``cli.command()`` or ``cli.add_command``.
    """


# --------------------------------------------------------------------------------------------
# Observers
# --------------------------------------------------------------------------------------------


@hookspec
def retbench_run_start(config: dict[str, Any]) -> None:
    """Called before a run does any work (loggers, trackers).

    :param config: the run configuration as a plain dict.
    """


@hookspec
def retbench_run_finish(record: RunRecord) -> None:
    """Called when a run has finished and its record is complete.

    :param record: the finished run's record.
    """
