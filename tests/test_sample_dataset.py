from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from retbench.data.datasets.sample import SampleDataset
from retbench.testing import check_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_sample_dataset_contract_and_counts(tmp_path):
    check_dataset(SampleDataset)
    test = SampleDataset().load("test", workdir=tmp_path)
    train = SampleDataset().load("train", workdir=tmp_path)
    assert (len(test.corpus), len(test.queries), len(train.queries)) == (300, 120, 60)
    assert set(test.answers) == set(test.queries)
    assert not set(test.queries) & set(train.queries)
    assert {"person", "date", "place", "number", "thing"} >= set(test.query_types.values())


def test_generator_is_deterministic(tmp_path):
    out = tmp_path / "sample"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_dataset.py"), str(out)], check=True,
                   capture_output=True)
    shipped = ROOT / "retbench" / "datasets" / "sample_data"
    for path in sorted(shipped.rglob("*.*")):
        assert (out / path.relative_to(shipped)).read_bytes() == path.read_bytes(), path.name
