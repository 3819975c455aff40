"""Entry point ``retbench: readers``: the generators and the readers."""

from __future__ import annotations

from retbench import Register, hookimpl
from retbench_readers.ct2_generator import CT2Generator
from retbench_readers.hf_generator import HFGenerator
from retbench_readers.openai_generator import OpenAICompatibleGenerator
from retbench_readers.rag import RagReader
from retbench_readers.realm import RealmReader


@hookimpl
def retbench_register_generators(register: Register) -> None:
    register(HFGenerator)
    register(CT2Generator)
    register(OpenAICompatibleGenerator)


@hookimpl
def retbench_register_readers(register: Register) -> None:
    register(RagReader)
    register(RealmReader)
