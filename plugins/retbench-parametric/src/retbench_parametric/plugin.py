"""Entry point ``retbench: parametric``: PRAG / DyPRAG injectors, their reader shortcuts and
the passage augmenter."""

from __future__ import annotations

from retbench import Register, hookimpl
from retbench_parametric.augment import PassageAugmenter
from retbench_parametric.dyprag import DyPragCombineInjector, DyPragInjector
from retbench_parametric.prag import PragCombineInjector, PragInjector
from retbench_parametric.readers import DyPragReader, PragReader


@hookimpl
def retbench_register_injectors(register: Register) -> None:
    for injector in (PragInjector, PragCombineInjector, DyPragInjector, DyPragCombineInjector):
        register(injector)


@hookimpl
def retbench_register_readers(register: Register) -> None:
    register(PragReader)
    register(DyPragReader)


@hookimpl
def retbench_register_augmenters(register: Register) -> None:
    register(PassageAugmenter)
