"""The core's own components, registered through the same hooks as any plugin.

Found through the ``retbench`` entry point ``core`` in the core's pyproject, like third-party
plugins; heavy work happens only when a component is used.
"""

from __future__ import annotations

from retbench import hookimpl
from retbench.data.datasets.beir import BeirFolder, named_beir_datasets
from retbench.data.datasets.dpr import CuratedTrec, NaturalQuestions, TriviaQA
from retbench.data.datasets.miracl import Miracl
from retbench.data.datasets.multihop import HotpotQA, TwoWikiMultihopQA
from retbench.data.datasets.sample import SampleDataset
from retbench.host.hookspecs import Register
from retbench.in_context import InContext
from retbench.metrics.answer import F1, ExactMatch
from retbench.metrics.qa import TopKAccuracy
from retbench.metrics.utility import RetrievalUtility


@hookimpl
def retbench_register_datasets(register: Register) -> None:
    register(BeirFolder)
    register(SampleDataset)
    for beir_dataset in named_beir_datasets():
        plain = "/" not in beir_dataset.name
        register(beir_dataset, aliases=(f"beir/{beir_dataset.name}",) if plain else ())
    register(NaturalQuestions)
    register(TriviaQA)
    register(CuratedTrec)
    register(TwoWikiMultihopQA, aliases=("2wiki",))
    register(HotpotQA)
    register(Miracl)


@hookimpl
def retbench_register_metrics(register: Register) -> None:
    register(ExactMatch, aliases=("em", "exact_match"))
    register(F1, aliases=("f1",))
    register(TopKAccuracy, aliases=("top-k",))
    register(RetrievalUtility, aliases=("ru", "retrieval_utility"))


@hookimpl
def retbench_register_injectors(register: Register) -> None:
    register(InContext)
