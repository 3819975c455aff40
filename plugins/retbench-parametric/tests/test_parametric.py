from __future__ import annotations

import pytest
import torch

import retbench.reporting.leaderboard
import retbench_parametric.plugin
import retbench_readers.plugin
from retbench import ConfigError, LoraWeights, Passage, RunConfig, evaluate
from retbench.testing import make_plugin_manager
from retbench import hookimpl
from retbench.engine.default_fit import with_default_fit_split
from retbench_parametric.augment import AugmentedPassage, PassageAugmenter, clean_rewrite, parse_questions
from retbench_parametric.dyprag import DyPragInjector
from retbench_parametric.lora import PassageLoraTrainer
from retbench_parametric.prag import PragInjector, training_texts
from retbench_parametric.translator import (
    ParameterTranslator,
    averaged_factors,
    lora_hooks,
    passage_embeddings,
    target_modules,
)
from retbench_readers.hf_generator import HFGenerator
from retbench_readers.lora_merge import merged_lora
from retbench_readers.prompts import build_prompt
from retbench_readers.rag import RagReader

PASSAGES = [Passage("d1", "paris is the capital of france", "france"),
            Passage("d2", "berlin is the capital of germany", "germany")]


class ScriptedHF(HFGenerator):
    """The tiny Llama for weights, with scripted augmentation outputs (a random model writes no
    questions); counts the prompts it was given."""

    prompts: list[str]

    def generate(self, prompts, *, max_new_tokens=None, prefix=""):
        self.prompts = getattr(self, "prompts", []) + list(prompts)
        outputs = []
        for prompt in prompts:
            if "Write 3 questions" in prompt or "Write 1 questions" in prompt:
                outputs.append("1. what is the capital of france?\n2. what is the capital of france?\nno question")
            elif prompt.startswith("Rewrite"):
                outputs.append("Rewritten passage:\nthe capital of france is paris , a city")
            elif prefix and "Passage 1:" in prompt:
                outputs.append(" paris, the city.")
            else:
                outputs.append(super().generate([prompt], max_new_tokens=max_new_tokens, prefix=prefix)[0])
        return outputs


@hookimpl
def retbench_register_generators(register):
    register(ScriptedGenerator)


class ScriptedGenerator(ScriptedHF):
    name = "scripted-hf"


def reader_with(generator) -> RagReader:
    reader = RagReader()
    reader.set_generator(generator)
    return reader


def test_questions_and_rewrites_are_parsed_robustly():
    assert parse_questions("1. Who? extra\nQ: Where is it?\n- Who?\nnot a question\nQuestion 3: When?", 5) == [
        "Who?", "Where is it?", "When?"]
    assert parse_questions("1. a?\n2. b?\n3. c?", 2) == ["a?", "b?"]
    assert clean_rewrite("Rewritten passage:\n\nParis is the capital of France.") == "Paris is the capital of France."
    assert clean_rewrite("Rewritten passage:\nRewritten passage:") == ""


def test_augmentation_is_cached_per_passage(retbench_tiny_llama, tmp_path):
    generator = ScriptedHF(model=str(retbench_tiny_llama))
    augmenter = PassageAugmenter()
    items = augmenter.augment_passages(PASSAGES, generator=generator, root=tmp_path)
    assert items[0].qa == [{"question": "what is the capital of france?", "answer": "paris"}]
    assert items[0].variants == ["france: paris is the capital of france", "the capital of france is paris , a city"]
    assert items[0].rejected == 2  # two of the three asked-for pairs missing
    calls = len(generator.prompts)
    again = augmenter.augment_passages([PASSAGES[1], PASSAGES[0]], generator=generator, root=tmp_path)
    assert len(generator.prompts) == calls and [i.passage_id for i in again] == ["d2", "d1"]
    assert augmenter.store(generator, tmp_path) != PassageAugmenter(qa_pairs=1).store(generator, tmp_path)


def random_lora(model, seed: int, scale: float = 0.05) -> LoraWeights:
    generator = torch.Generator().manual_seed(seed)
    factors = {}
    for name, _, _, fan_in, fan_out in target_modules(model, ["gate_proj", "up_proj", "down_proj"]):
        factors[name] = (torch.randn(2, fan_in, generator=generator) * scale,
                         torch.randn(fan_out, 2, generator=generator) * scale)
    return LoraWeights(factors=factors, scaling=16.0)


def test_merging_sums_the_loras_and_restores_the_weights_exactly(retbench_tiny_llama):
    generator = HFGenerator(model=str(retbench_tiny_llama))
    model, tokenizer = generator.load()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = tokenizer("paris is the capital of", return_tensors="pt")["input_ids"]
    first, second = random_lora(model, 1), random_lora(model, 2)
    with torch.no_grad():
        base = model(ids).logits
        with merged_lora(model, [first, second]):
            merged = model(ids).logits
        with lora_hooks(model, first.factors, 16.0), \
                lora_hooks(model, second.factors, 16.0):
            hooked = model(ids).logits
    assert not torch.allclose(base, merged)
    assert torch.allclose(merged, hooked, atol=1e-4)  # summing LoRAs into W == adding each one's output
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    with pytest.raises(ConfigError, match="does not have"):
        with merged_lora(model, [LoraWeights({"model.nowhere": first.factors[next(iter(first.factors))]}, 1.0)]):
            pass


def test_prag_lora_raises_the_likelihood_of_its_passages_answers(retbench_tiny_llama, tmp_path):
    generator = ScriptedHF(model=str(retbench_tiny_llama))
    injector = PragInjector(learning_rate=1e-2, epochs=3)
    injection = injector.prepare(PASSAGES[:1], reader=reader_with(generator), workdir=tmp_path / "inject" / "x")
    assert injection.passages == [] and len(injection.payload) == 1
    lora = injection.payload[0]
    assert set(lora.factors) == {n for n, *_ in target_modules(generator.load()[0], injector.targets)}
    assert {tuple(a.shape)[0] for a, _ in lora.factors.values()} == {2} and lora.scaling == 16.0
    prompt = generator.format(build_prompt("direct", "what is the capital of france", []))
    context, answer = [prompt + "The answer is"], [" paris."]
    base = generator.loglikelihood(context, answer)[0]
    with generator.injected(injection.payload):
        injected = generator.loglikelihood(context, answer)[0]
    assert injected > base
    assert generator.loglikelihood(context, answer)[0] == base
    artefact = injection.cost["artefacts"]["d1"]
    assert artefact["bytes"] > 0 and artefact["offline_seconds"] > 0
    combined = retbench_parametric.prag.PragCombineInjector(learning_rate=1e-2, epochs=3).prepare(
        PASSAGES[:1], reader=reader_with(generator), workdir=tmp_path / "inject" / "y")
    assert combined.passages == PASSAGES[:1]
    assert all(torch.equal(combined.payload[0].factors[n][1], b) for n, (_, b) in lora.factors.items())


def test_augmentation_prompts_are_injector_parameters(retbench_tiny_llama, tmp_path):
    prompt = "Passage: {passage}\n\nList {count} questions about it."
    injector = PragInjector(augment_args={"question_prompt": prompt})
    assert injector.augmenter().question_prompt == prompt
    reader = reader_with(ScriptedHF(model=str(retbench_tiny_llama)))
    generator = reader.generator_
    store = injector.lora_store(generator, reader, tmp_path / "x").folder
    assert store != PragInjector().lora_store(generator, reader, tmp_path / "x").folder
    short = RagReader(template="short")
    short.set_generator(generator)
    assert PragInjector().lora_store(generator, short, tmp_path / "x").folder != PragInjector().lora_store(
        generator, reader, tmp_path / "x").folder  # the training format is part of the key
    from retbench_parametric.readers import DyPragReader, PragReader

    prag_reader, dyprag_reader = PragReader(), DyPragReader()
    for other in (prag_reader, dyprag_reader):
        other.set_generator(generator)
    assert PragInjector().lora_store(generator, prag_reader, tmp_path / "x").folder == DyPragInjector().lora_store(
        generator, dyprag_reader, tmp_path / "x").folder  # prag and DyPRAG's training data share LoRAs
    with pytest.raises(ConfigError, match="augment_args \\['qa_prompt'\\] unknown"):
        PragInjector(augment_args={"qa_prompt": prompt}).augmenter()


def test_every_passage_lora_starts_from_one_seeded_initialisation(retbench_tiny_llama):
    generator = HFGenerator(model=str(retbench_tiny_llama))
    model, _ = generator.load()
    trainer = PassageLoraTrainer(model, generator.encode, PragInjector().lora_settings())
    start = trainer.weights()
    trainer.train(["paris is the capital of france"])
    trainer.reset()
    assert all(torch.equal(start.factors[n][0], a) for n, (a, _) in trainer.weights().factors.items())
    other = PassageLoraTrainer(model, generator.encode, PragInjector().lora_settings())
    assert all(torch.equal(start.factors[n][0], a) for n, (a, _) in other.weights().factors.items())
    assert all(not torch.any(b) for _, b in start.factors.values())  # B starts at zero: no change at first


def test_a_killed_prag_preparation_resumes_without_retraining(retbench_tiny_llama, tmp_path, monkeypatch):
    generator = ScriptedHF(model=str(retbench_tiny_llama))
    reader, workdir = reader_with(generator), tmp_path / "inject" / "x"
    trained: list[int] = []
    original = PassageLoraTrainer.train

    def train_then_die(self, texts):
        if len(trained) == 1:
            raise KeyboardInterrupt
        trained.append(1)
        return original(self, texts)

    monkeypatch.setattr(PassageLoraTrainer, "train", train_then_die)
    with pytest.raises(KeyboardInterrupt):
        PragInjector().prepare(PASSAGES, reader=reader, workdir=workdir)
    monkeypatch.setattr(PassageLoraTrainer, "train", original)
    injector = PragInjector()
    injector.prepare(PASSAGES, reader=reader, workdir=workdir)
    assert injector.trained_ == 1  # only the passage that had no LoRA yet


def test_translator_writes_a_lora_for_every_target_module(retbench_tiny_llama):
    model, _ = HFGenerator(model=str(retbench_tiny_llama)).load()
    modules = target_modules(model, ["gate_proj", "up_proj", "down_proj"])
    translator = ParameterTranslator(model.config.hidden_size, modules, rank=2, intermediate=32)
    out = translator(torch.randn(3, model.config.hidden_size))
    assert len(out) == 3 and set(out[0]) == {m[0] for m in modules}
    for name, _, _, fan_in, fan_out in modules:
        a, b = out[1][name]
        assert tuple(a.shape) == (2, fan_in) and tuple(b.shape) == (fan_out, 2)
    assert not torch.equal(out[0][modules[0][0]][0], out[1][modules[0][0]][0])  # depends on the passage


def test_a_passage_embedding_is_the_last_tokens_final_hidden_state(retbench_tiny_llama):
    model, tokenizer = HFGenerator(model=str(retbench_tiny_llama)).load()
    texts = ["paris is the capital of france", "the nile"]
    embeddings = passage_embeddings(model, tokenizer, texts, max_length=64)
    with torch.no_grad():
        for row, text in zip(embeddings, texts):
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            assert torch.allclose(row, model(ids, output_hidden_states=True).hidden_states[-1][0, -1], atol=1e-5)


def config(tiny, reader, **kwargs) -> RunConfig:
    kwargs.setdefault("generator", "scripted-hf")
    return RunConfig(dataset="mock", retriever="oracle", reader=reader, read_k=2,
                     generator_args={"model": str(tiny), "max_new_tokens": 3}, **kwargs)


class SmallDefaultFit(DyPragInjector):
    """DyPRAG with a default training rule that fits the 4-question mock dataset."""

    name = "dyprag-small"
    default_fit = ((2, 4), (0, 2))


@hookimpl
def retbench_register_injectors(register):
    register(SmallDefaultFit)


def manager():
    import sys

    return make_plugin_manager(retbench_readers.plugin, retbench_parametric.plugin, sys.modules[__name__])


def test_prag_runs_end_to_end_and_reports_its_costs(retbench_tiny_llama, retbench_cache):
    record = evaluate(config(retbench_tiny_llama, "prag"), pm=manager(), cache=retbench_cache)
    assert record.components["injector"]["name"] == "prag"
    cost = record.cost
    assert cost["prepared_passages"] >= 2 and cost["offline_seconds_per_passage"] > 0
    assert cost["storage_bytes"] > 0 and {"load", "merge", "generate"} <= set(cost["online_seconds"])
    assert cost["online_seconds_per_question"] == pytest.approx(sum(cost["online_seconds"].values()), abs=1e-3)
    again = evaluate(config(retbench_tiny_llama, "prag"), pm=manager(), cache=retbench_cache)
    assert again.cached and again.cost["storage_bytes"] == cost["storage_bytes"]
    table = retbench.reporting.leaderboard.build_table([record])
    assert all(label in table for label in ("online s/q", "prep s/passage", "storage MB"))


def test_dyprag_without_fit_split_trains_on_its_default_questions_disjoint_from_the_evaluated(
        retbench_tiny_llama, retbench_cache):
    args = {"translator_lr": 3e-3, "learning_rate": 1e-2}
    record = evaluate(config(retbench_tiny_llama, "rag", injector="dyprag-small", injector_args=args),
                      pm=manager(), cache=retbench_cache)
    assert record.config["fit_split"] == "test[2:4]" and record.config["split"] == "test[0:2]"
    assert record.dataset["queries"] == 2 and record.training["fit-injector"]["steps"] >= 1
    with pytest.raises(ConfigError, match="selects no questions"):
        evaluate(config(retbench_tiny_llama, "dyprag"), pm=manager(), cache=retbench_cache)


def test_the_default_fit_split_is_disjoint_from_the_evaluated_split():
    injector = DyPragInjector()
    base = RunConfig(dataset="2wikimultihopqa", retriever="bm25", reader="dyprag")
    filled = with_default_fit_split(base, injector, "dev")
    assert (filled.split, filled.fit_split) == ("dev[0:300]", "dev[300:500]")
    assert with_default_fit_split(RunConfig(**{**base.to_dict(), "split": "dev[:200]"}), injector,
                                  "dev").fit_split == "dev[300:500]"
    for overlapping in ("dev", "dev[250:350]", "dev[-10:]"):
        with pytest.raises(ConfigError, match="disjoint only from dev\\[0:300\\]"):
            with_default_fit_split(RunConfig(**{**base.to_dict(), "split": overlapping}), injector, "dev")
    given = RunConfig(**{**base.to_dict(), "fit_split": "train"})
    assert with_default_fit_split(given, injector, "dev") is given


def test_an_unknown_option_fails_before_any_model_loads(tmp_path, retbench_cache):
    missing = {"model": str(tmp_path / "no-such-model")}
    for kind, args, message in (("injector_args", {"generated_scaling": "half"}, "generated_scaling"),
                                ("reader_args", {"extraction": "all"}, "extraction"),
                                ("injector_args", {"augment_args": {"qa_prompt": "x"}}, "qa_prompt")):
        run = RunConfig(dataset="mock", retriever="oracle", reader="dyprag", generator_args=missing,
                        **{kind: args})
        with pytest.raises(ConfigError, match=message):
            evaluate(run, pm=manager(), cache=retbench_cache)


def test_prag_training_texts_are_the_answer_prompts_with_a_passage_free_example(retbench_tiny_llama):
    reader = reader_with(HFGenerator(model=str(retbench_tiny_llama)))
    item = AugmentedPassage("d1", ["france: paris is the capital", "paris is france's capital"],
                            [{"question": f"q{i}", "answer": f"a{i}"} for i in range(3)])
    texts = training_texts(item, reader)
    assert len(texts) == 5  # QA 0 and 1 with each variant, QA 2 with no passage (reference encode.py)
    assert texts[0] == reader.training_text("q0", [Passage("d1", item.variants[0])], "a0")
    assert texts[0] == reader.generator_.format(build_prompt("direct", "q0", [Passage("d1", item.variants[0])])) + (
        "The answer is a0.")
    assert "paris is france's capital" in texts[1] and "Passage 1:" in texts[3]
    assert texts[4] == reader.training_text("q2", [], "a2") and "Passage 1:" not in texts[4]
    assert training_texts(AugmentedPassage("d2", ["x"], []), reader) == []


def test_translator_has_separate_bias_free_projectors_per_module_and_layer(retbench_tiny_llama):
    model, _ = HFGenerator(model=str(retbench_tiny_llama)).load()
    modules = target_modules(model, ["gate_proj", "up_proj", "down_proj"])
    hidden = model.config.hidden_size
    translator = ParameterTranslator(hidden, modules, rank=2, intermediate=4)
    assert all(p.dim() == 3 for p in translator.parameters())  # (layer, in, out) weights, no bias vectors
    assert max(float(p.detach().abs().max()) for p in translator.parameters()) < 1e-5  # N(0, 1e-7) start
    with torch.no_grad():
        for p in translator.parameters():
            p.normal_()
    embedding = torch.randn(1, hidden)
    out = translator(embedding)[0]
    name, layer, kind, fan_in, _ = next(m for m in modules if m[1] == 1)
    features = torch.cat([embedding[0], torch.tensor([float(layer)])])  # the raw layer index
    expected = (torch.relu(features @ translator.pre[f"{kind}_A"][layer]) @ translator.post[f"{kind}_A"][layer])
    assert torch.allclose(out[name][0], expected.reshape(2, fan_in), rtol=1e-4, atol=1e-3)
    same_kind = [m[0] for m in modules if m[2] == kind]
    assert not torch.allclose(out[same_kind[0]][0], out[same_kind[1]][0])  # layers get their own factors


def test_generated_loras_of_several_passages_are_averaged():
    first = {"m": (torch.ones(2, 3), torch.zeros(4, 2))}
    second = {"m": (3 * torch.ones(2, 3), 2 * torch.ones(4, 2))}
    a, b = averaged_factors([first, second])["m"]
    assert torch.equal(a, 2 * torch.ones(2, 3)) and torch.equal(b, torch.ones(4, 2))


def test_a_generated_lora_scaled_by_zero_gives_exactly_the_closed_book_outputs(retbench_tiny_llama):
    generator = HFGenerator(model=str(retbench_tiny_llama), max_new_tokens=6)
    injector = DyPragInjector()
    model, _ = generator.load()
    translator = injector._translator(model)
    with torch.no_grad():
        for p in translator.parameters():
            p.normal_(std=0.05)
    injector.translator_ = translator
    lora, _ = injector.generated_lora(PASSAGES, generator)
    assert lora is not None and set(lora.factors) == {m[0] for m in target_modules(model, injector.targets)}
    prompts = ["Question: what is the capital of france?"]
    base = generator.generate(prompts)
    with generator.injected([LoraWeights(lora.factors, 0.0)]):
        assert generator.generate(prompts) == base
    with generator.injected([lora]):
        ids = torch.tensor([generator.encode("paris is the capital of france")])
        changed = model(ids).logits
    assert not torch.allclose(changed, model(ids).logits)


def padded_reference_losses(model, ids, pad, max_length, student, teacher):
    """What the reference's training step computes: the text right-padded to max_length, padding
    masked from attention and from the LM labels, KL summed over every position."""
    import torch.nn.functional as F

    length = len(ids)
    input_ids = torch.tensor([ids + [pad] * (max_length - length)])
    mask = torch.tensor([[1] * length + [0] * (max_length - length)])
    labels = torch.tensor([ids + [-100] * (max_length - length)])
    with lora_hooks(model, *student):
        out = model(input_ids=input_ids, attention_mask=mask, labels=labels)
    with lora_hooks(model, *teacher):
        target = model(input_ids=input_ids, attention_mask=mask).logits
    kl = F.kl_div(F.log_softmax(out.logits, -1), F.softmax(target, -1), reduction="batchmean")
    return float(out.loss), float(kl)


@pytest.mark.parametrize("samples", [64, 5])
def test_dyprag_kl_covers_the_references_padding(retbench_tiny_llama, samples):
    generator = HFGenerator(model=str(retbench_tiny_llama))
    model, tokenizer = generator.load()
    model.requires_grad_(False)
    text = "paris is the capital of france and berlin is the capital of germany"
    ids = generator.encode(text)
    injector = DyPragInjector(max_length=len(ids) + 40, kl_pad_samples=samples)
    student, teacher = random_lora(model, 1), random_lora(model, 2)
    generated = {n: (a, b) for n, (a, b) in student.factors.items()}
    with torch.no_grad():
        terms = injector.losses(generated, teacher, [text], model, generator)
        lm, kl = padded_reference_losses(model, ids, tokenizer.eos_token_id or 0, injector.max_length,
                                         (student.factors, injector.generated_scaling_),
                                         (teacher.factors, teacher.scaling))
    assert float(terms["lm"]) == pytest.approx(lm, rel=1e-5)
    if samples >= 40:  # every padding position present: the reference's sum itself
        assert float(terms["kl"]) == pytest.approx(kl, rel=1e-4)
    else:  # 5 strata of 8 padding positions stand for them
        assert float(terms["kl"]) == pytest.approx(kl, rel=0.05)
    text_only = DyPragInjector(max_length=injector.max_length, kl_positions="text")
    with torch.no_grad():
        unpadded = text_only.losses(generated, teacher, [text], model, generator)
    assert float(unpadded["lm"]) == pytest.approx(lm, rel=1e-5) and float(unpadded["kl"]) < kl


def test_dyprag_translator_moves_toward_the_prag_loras(retbench_tiny_llama, retbench_cache):
    args = {"translator_epochs": 6, "translator_lr": 3e-3, "learning_rate": 1e-2}
    record = evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train", reader_args={},
                             injector_args=args), pm=manager(), cache=retbench_cache)
    fit = record.training["fit-injector"]
    mse, kl = fit["curves"]["mse"], fit["curves"]["kl"]
    per_epoch = len(mse) // 6
    assert sum(mse[-per_epoch:]) < sum(mse[:per_epoch]) and sum(kl[-per_epoch:]) < sum(kl[:per_epoch])
    assert len(fit["curves"]["teacher_lm"]) == len(mse)
    assert fit["passages"] >= 2 and fit["bytes"] > 0
    assert {"encode", "translate", "merge", "generate"} <= set(record.cost["online_seconds"])
    assert record.cost["storage_bytes"] == fit["bytes"]  # DyPRAG stores no per-passage LoRA
    label = retbench.reporting.leaderboard.system_label(record)
    assert "dyprag (learning_rate=0.01, translator_epochs=6, translator_lr=0.003) [trained: train]" in label
    ablation = evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train",
                               injector_args={**args, "kl_weight": 0.0}), pm=manager(), cache=retbench_cache)
    assert ablation.stages["fit-injector"]["key"] != record.stages["fit-injector"]["key"]
    curves = ablation.training["fit-injector"]["curves"]
    assert ablation.training["fit-injector"]["weights"]["kl"] == 0.0 and any(curves["kl"])  # logged, not used
    assert curves["loss"][0] == pytest.approx(curves["lm"][0] + 100.0 * curves["mse"][0], rel=1e-4)
    again = evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train", injector_args=args),
                     pm=manager(), cache=retbench_cache)
    assert again.cached and again.metrics == record.metrics
    combined = evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train", injector="dyprag-combine",
                               injector_args=args), pm=manager(), cache=retbench_cache)
    assert combined.training["fit-injector"]["curves"] == fit["curves"]  # the same translator, not retrained


def test_an_interrupted_translator_training_resumes_from_its_checkpoint(retbench_tiny_llama, retbench_cache,
                                                                        tmp_path, monkeypatch):
    from retbench.engine.cache import Cache

    args = {"translator_epochs": 3, "translator_lr": 3e-3, "learning_rate": 1e-2, "checkpoint_every": 2}
    whole = evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train", injector_args=args), pm=manager(),
                     cache=Cache(tmp_path / "uninterrupted"))
    steps = whole.training["fit-injector"]["steps"]
    assert steps >= 5
    calls = {"n": 0}
    losses = DyPragInjector.losses

    def dies_at_step_five(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return losses(self, *a, **k)

    monkeypatch.setattr(DyPragInjector, "losses", dies_at_step_five)
    with pytest.raises(KeyboardInterrupt):
        evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train", injector_args=args), pm=manager(),
                 cache=retbench_cache)
    monkeypatch.setattr(DyPragInjector, "losses", losses)
    calls["n"] = 0
    monkeypatch.setattr(DyPragInjector, "losses", lambda self, *a, **k: calls.__setitem__("n", calls["n"] + 1)
                        or losses(self, *a, **k))
    resumed = evaluate(config(retbench_tiny_llama, "dyprag", fit_split="train", injector_args=args), pm=manager(),
                       cache=retbench_cache)
    assert calls["n"] == steps - 4, "the four steps before the checkpoint were not redone"
    assert resumed.training["fit-injector"]["curves"] == whole.training["fit-injector"]["curves"]
    assert resumed.metrics == whole.metrics
    assert "checkpoint_every" not in DyPragInjector().get_params()  # a late parameter: old keys stay valid


def test_dyprag_without_a_translator_is_a_clear_error(retbench_tiny_llama, tmp_path):
    injector = DyPragInjector()
    with pytest.raises(ConfigError, match="not trained"):
        injector.prepare(PASSAGES, reader=reader_with(HFGenerator(model=str(retbench_tiny_llama))),
                         workdir=tmp_path)



def test_finding_the_plugins_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, retbench_parametric.plugin, retbench_readers.plugin; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_translators_of_different_qa_writers_are_kept_apart(retbench_tiny_llama, tmp_path):
    generator = HFGenerator(model=str(retbench_tiny_llama))
    reader = reader_with(generator)
    plain, other_writer = DyPragInjector(), DyPragInjector()
    other_writer.set_augment_generator(HFGenerator(model=str(retbench_tiny_llama), max_new_tokens=7))
    folders = {injector.translator_folder(generator, reader, PASSAGES, 0, tmp_path / "inject")
               for injector in (plain, other_writer, DyPragInjector())}
    assert len(folders) == 2
