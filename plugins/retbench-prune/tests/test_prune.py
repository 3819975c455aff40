from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from retbench import ConfigError, DataFormatError
from retbench.cli import cli, main
from retbench_prune.llama import MaskedModel, binarized_hidden, pruned_model, shape_of
from retbench_prune.masks import HardConcreteMask, PruningMasks
from retbench_prune.recipe import METADATA, PruneSettings, prune, schedule, target_shape

TARGET = {"layers": 3, "heads": 4, "intermediate": 40, "hidden": 32}
FAST = PruneSettings(prune_steps=6, recover_steps=3, seq_len=16, batch_size=4, recover_batch_size=4,
                     micro_batch_size=2, held_out_blocks=4, checkpoint_every=2)


def scrambled_masks(model, **target):
    source = shape_of(model)
    masks = PruningMasks(source, target_shape(source, **target))
    with torch.no_grad():
        for mask in masks.masks.values():
            mask.log_alpha.normal_(0, 2)
    return masks.eval()


def test_masks_start_near_one_and_keep_exactly_the_target_per_row_and_group():
    mask = HardConcreteMask(3, 6, 4, groups=2)
    with torch.no_grad():
        assert float(mask.expected_sparsity().mean()) < 0.01 and float(mask.sample().mean()) > 0.9
    with torch.no_grad():
        mask.log_alpha.normal_(0, 2)
    final = mask.deterministic()
    assert ((final != 0).sum(-1) == 4).all()
    assert ((final.view(3, 2, 3) != 0).sum(-1) == 2).all()  # two query heads on each key/value head
    with pytest.raises(ValueError):
        HardConcreteMask(1, 6, 3, groups=2)


def test_the_lagrangian_pulls_expected_sparsity_towards_a_target_that_warms_up():
    mask = HardConcreteMask(1, 10, 5)
    assert mask.target_sparsity == 0.5
    from retbench_prune.masks import Shape

    shape = Shape(layers=4, heads=6, kv_heads=2, head_dim=8, intermediate=64, hidden=48, vocab=10, tied_embeddings=True)
    masks = PruningMasks(shape, target_shape(shape, **TARGET))
    _, start = masks.lagrangian(0.0)
    _, half = masks.lagrangian(0.5)
    assert start["hidden_target_sparsity"] == 0 and half["hidden_target_sparsity"] == pytest.approx(1 / 6)
    penalty, _ = masks.lagrangian(1.0)
    penalty.backward()
    assert masks.lambdas["hidden_1"].grad < 0  # expected sparsity below target: ascent raises the pressure


def test_the_pruned_model_computes_what_the_masked_model_computes(gqa_llama):
    model = AutoModelForCausalLM.from_pretrained(gqa_llama).eval()
    zs = binarized_hidden(scrambled_masks(model, **TARGET)())
    ids = torch.randint(0, model.config.vocab_size, (2, 12))
    masked = MaskedModel(model)
    masked.zs = zs
    with torch.no_grad():
        expected = model(ids).logits
    masked.remove()
    small = pruned_model(model, zs).eval()
    with torch.no_grad():
        assert torch.allclose(small(ids).logits, expected, atol=1e-5)
    shape = shape_of(small)
    assert (shape.layers, shape.heads, shape.kv_heads, shape.intermediate, shape.hidden) == (3, 4, 2, 40, 32)
    assert sum(p.numel() for p in small.parameters()) == shape.parameters()


def test_masks_all_one_leave_the_model_unchanged(gqa_llama):
    model = AutoModelForCausalLM.from_pretrained(gqa_llama).eval()
    ids = torch.randint(0, model.config.vocab_size, (1, 9))
    with torch.no_grad():
        plain = model(ids).logits
        masked = MaskedModel(model)
        masked.zs = {"layer": torch.ones(1, 4), "head": torch.ones(4, 6), "intermediate": torch.ones(4, 64),
                     "hidden": torch.ones(1, 48)}
        assert torch.allclose(model(ids).logits, plain, atol=1e-5)


def test_targets_are_checked_in_one_line(gqa_llama):
    shape = shape_of(AutoModelForCausalLM.from_pretrained(gqa_llama))
    with pytest.raises(ConfigError, match="multiple of the 2 key/value heads"):
        target_shape(shape, layers=3, heads=3, intermediate=40, hidden=32)
    with pytest.raises(ConfigError, match="target hidden must be in 1..48"):
        target_shape(shape, layers=3, heads=4, intermediate=40, hidden=64)


def test_the_schedule_warms_up_then_decays_to_the_floor():
    values = [schedule(s, 100, 0.1, 0.1) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1, abs=0.01) and max(values) == pytest.approx(1.0)


def test_prune_writes_a_smaller_model_with_its_metadata_and_caches_it(gqa_llama, text_file, tmp_path):
    folder = prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path, **TARGET)
    record = json.loads((folder / METADATA).read_text())
    assert record["target"]["parameters"] < record["source"]["parameters"]
    assert set(record["perplexity"]) == {"source", "pruned", "recovered"}
    assert len(record["prune_curve"]) == 6 and len(record["recover_curve"]) == 3
    assert record["prune_curve"][-1]["hidden_target_sparsity"] > record["prune_curve"][0]["hidden_target_sparsity"]
    small = AutoModelForCausalLM.from_pretrained(folder)
    assert shape_of(small).hidden == 32 and not list(tmp_path.glob("models/pruned/*.work"))
    calls = []
    assert prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path, on_step=lambda *a: calls.append(a),
                 **TARGET) == folder and calls == []


def test_a_killed_pruning_run_resumes_and_ends_as_an_uninterrupted_one(gqa_llama, text_file, tmp_path):
    whole = prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path / "a", **TARGET)

    def die(stage, step):
        if stage == "prune" and step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path / "b", on_step=die, **TARGET)
    steps = []
    resumed = prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path / "b",
                    on_step=lambda stage, step: steps.append((stage, step)), **TARGET)
    assert steps[0] == ("prune", 3)  # from the checkpoint at step 2
    first, second = (AutoModelForCausalLM.from_pretrained(f).state_dict() for f in (whole, resumed))
    assert all(torch.equal(first[k], second[k]) for k in first)
    a, b = (json.loads((f / METADATA).read_text()) for f in (whole, resumed))
    assert a["prune_curve"] == b["prune_curve"] and a["perplexity"] == b["perplexity"]


def test_random_init_gives_the_target_shape_untrained(gqa_llama, text_file, tmp_path):
    folder = prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path, init="random", **TARGET)
    record = json.loads((folder / METADATA).read_text())
    assert "prune_curve" not in record and set(record["perplexity"]) == {"source", "initial", "recovered"}
    assert shape_of(AutoModelForCausalLM.from_pretrained(folder)) == shape_of(
        AutoModelForCausalLM.from_pretrained(prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path,
                                                   **TARGET)))


def test_bad_text_is_one_line_naming_the_file_and_line(gqa_llama, tmp_path):
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"text": "fine"}\n{"title": "no text"}\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl, line 2, field 'text'"):
        prune(str(gqa_llama), bad, settings=FAST, home=tmp_path, **TARGET)


def test_the_command_line_prints_the_folder_and_the_metadata(gqa_llama, text_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path))
    args = ["prune", "--model", str(gqa_llama), "--text", str(text_file), "--layers", "3", "--heads", "4",
            "--intermediate", "40", "--hidden", "32", "--prune-steps", "2", "--recover-steps", "1", "--seq-len", "16",
            "--batch-size", "2", "--recover-batch-size", "2", "--micro-batch-size", "2", "--held-out-blocks", "2"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output[result.output.index("{"):])
    assert shown["target"]["shape"]["layers"] == 3 and shown["perplexity"]["recovered"] > 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*args, "--heads", "3"])
    error = capsys.readouterr().err
    assert "multiple of the 2 key/value heads" in error and "Loading weights" not in error


def test_a_pruned_model_is_a_drama_backbone_whose_record_shows_the_pruning(gqa_llama, text_file, tmp_path,
                                                                          retbench_cache):
    import retbench_dense.plugin
    from retbench import RunConfig, evaluate
    from retbench.testing import make_plugin_manager

    folder = prune(str(gqa_llama), text_file, settings=FAST, home=tmp_path, **TARGET)
    args = {"model": str(folder), "epochs": 1, "train_batch_size": 2, "learning_rate": 1e-3}
    config = RunConfig(dataset="mock", retriever="drama", fit_split="train", negatives="in-batch", retriever_args=args)
    record = evaluate(config, pm=make_plugin_manager(retbench_dense.plugin), cache=retbench_cache)
    made = record.components["retriever"]["fingerprint"]["made"]
    assert made["made_by"] == "retbench prune" and made["target"]["shape"]["hidden"] == 32
    assert set(made["perplexity"]) == {"source", "pruned", "recovered"}
    assert 0 <= record.metrics["nDCG@10"] <= 1
