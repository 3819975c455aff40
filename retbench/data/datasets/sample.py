"""The embedded sample dataset: a small fictional atlas written for retbench.

It ships inside the package (BEIR layout plus ``answers.jsonl``) so that ``make demo`` and the
tests run offline. The facts are invented, so a closed-book model cannot know them: answering
needs retrieval. ``scripts/make_sample_dataset.py`` regenerates the files deterministically.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from retbench.component import Component
from retbench.data.datasets.beir import load_beir_split
from retbench.data.types import DatasetSplit


class SampleDataset(Component):
    """Embedded fictional atlas: 300 passages, 120 test / 60 train questions with answers."""

    name = "sample"
    version = "1"
    licence = "Apache-2.0 (written for retbench)"

    def __init__(self) -> None:
        pass

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        with as_file(files("retbench.data.datasets") / "sample_data") as folder:
            split_data = load_beir_split(Path(folder), split, workdir=workdir, name=self.name)
        split_data.citation = "retbench sample atlas (fictional), written for this project"
        return split_data
