"""Entry point ``retbench: readers``: the generators and the readers."""

from __future__ import annotations

from retbench import hookimpl
from retbench.hookspecs import Register
from retbench_readers.hf_generator import HFGenerator
from retbench_readers.openai_generator import OpenAICompatibleGenerator
from retbench_readers.rag import RagReader
from retbench_readers.realm import RealmReader


@hookimpl
def retbench_register_generators(register: Register) -> None:
    register(HFGenerator)
    register(OpenAICompatibleGenerator)


@hookimpl
def retbench_register_readers(register: Register) -> None:
    register(RagReader)
    register(RealmReader)
