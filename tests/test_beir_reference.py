"""The prepared Arrow corpus, queries and qrels equal what beir's GenericDataLoader reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retbench.data.datasets.beir import BeirFolder

SHARED = Path(os.environ.get("RETBENCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def check_identical(folder: Path, workdir: Path) -> None:
    from beir.datasets.data_loader import GenericDataLoader

    corpus, queries, qrels = GenericDataLoader(data_folder=str(folder)).load(split="test")
    split = BeirFolder(location=str(folder)).load("test", workdir=workdir)
    assert {p.id: {"title": p.title, "text": p.text} for p in split.corpus} == {
        doc_id: {"title": doc.get("title", ""), "text": doc["text"]} for doc_id, doc in corpus.items()}
    assert split.queries == queries
    assert split.qrels == qrels


def test_small_folder_matches_generic_data_loader(beir_folder, tmp_path):
    check_identical(beir_folder(), tmp_path / "prep")


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "scifact").is_dir(), reason="../shared/data/scifact is absent")
def test_scifact_matches_generic_data_loader(tmp_path):
    check_identical(SHARED / "scifact", tmp_path / "prep")
