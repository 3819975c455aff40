"""Entry point ``retbench: synth``: the ``hybrid`` retriever, DRAMA's augmenters and the ``syneg`` sampler."""

from __future__ import annotations

from retbench import Register, hookimpl
from retbench_synth.drama import CropAugmenter, QgenAugmenter, RerankAugmenter, TripletAugmenter
from retbench_synth.hybrid import HybridRetriever
from retbench_synth.syneg import SynegNegatives


@hookimpl
def retbench_register_retrievers(register: Register) -> None:
    register(HybridRetriever)


@hookimpl
def retbench_register_augmenters(register: Register) -> None:
    for augmenter in (CropAugmenter, QgenAugmenter, RerankAugmenter, TripletAugmenter):
        register(augmenter)


@hookimpl
def retbench_register_negative_samplers(register: Register) -> None:
    register(SynegNegatives)
