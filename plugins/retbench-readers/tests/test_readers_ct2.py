"""The ``ct2`` generator on a tiny random Llama converted to CTranslate2, against ``hf``."""

from __future__ import annotations

import pytest

from retbench import ConfigError
from retbench.engine.cache import default_home
from retbench_readers.hf_generator import HFGenerator

pytest.importorskip("ctranslate2")

from retbench_readers.ct2_generator import CT2Generator  # noqa: E402

PROMPTS = ["paris is the capital of", "the nile", "what is the highest mountain on earth and where is it"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random Llama like ``retbench_tiny_llama``, with a vocabulary free of duplicates
    (that one lists "a" twice, which leaves a hole in its ids; CTranslate2 maps tokens by their
    strings and would shift every id after it) and BOS / EOS named on the tokenizer (the
    converter needs them)."""
    import torch
    from transformers import BertTokenizerFast, LlamaConfig, LlamaForCausalLM

    from retbench.testing.tiny_models import _vocabulary

    folder = tmp_path_factory.mktemp("ct2-tiny") / "model"
    vocabulary = {token: index for index, token in enumerate(dict.fromkeys(_vocabulary()))}
    tokenizer = BertTokenizerFast(vocab=vocabulary, do_lower_case=True, bos_token="[CLS]", eos_token="[SEP]")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                         eos_token_id=tokenizer.sep_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path_factory.getbasetemp() / "ct2-home"))


def ct2(tiny, **params) -> CT2Generator:
    return CT2Generator(model=str(tiny), compute_type=params.pop("compute_type", "float32"), device="cpu", **params)


def test_conversion_is_cached_and_reused(tiny, monkeypatch):
    first = ct2(tiny, max_new_tokens=4)
    first.generate(["paris"])
    folders = [p for p in (default_home() / "models" / "ct2").iterdir() if p.is_dir()]
    assert folders == [first.folder_] and (first.folder_ / "model.bin").is_file()
    import ctranslate2.converters

    def refuse(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", refuse)
    assert ct2(tiny, max_new_tokens=4).generate(["paris"]) == first.generate(["paris"])


def test_float32_greedy_equals_hf(tiny):
    hf = HFGenerator(model=str(tiny), max_new_tokens=6, device="cpu")
    assert ct2(tiny, max_new_tokens=6).generate(PROMPTS) == hf.generate(PROMPTS)


def test_batched_generation_equals_one_at_a_time(tiny):
    gen = ct2(tiny, batch_size=3, max_new_tokens=6)
    together = gen.generate(PROMPTS)
    alone = [ct2(tiny, batch_size=1, max_new_tokens=6).generate([p])[0] for p in PROMPTS]
    assert together == alone
    assert all(u["tokens_out"] == 6 for u in gen.last_usage_)  # the random model never says EOS this soon
    assert gen.usage_["calls"] == 3 and gen.usage_["tokens_in"] == sum(u["tokens_in"] for u in gen.last_usage_)


def test_a_prefix_starts_the_answer_and_only_the_rest_is_returned(tiny):
    gen = ct2(tiny, max_new_tokens=4, chat_template=False)
    assert gen.generate(["paris is"], prefix=" the capital")[0] == gen.generate(["paris is the capital"])[0]


def test_stop_strings_end_generation_early(tiny):
    free = ct2(tiny, max_new_tokens=12)
    text = free.generate([PROMPTS[0]])[0]
    word = text.split()[1]
    stopped = ct2(tiny, max_new_tokens=12, stop=[word])
    cut = stopped.generate([PROMPTS[0]])[0]
    assert word not in cut and text.startswith(cut.rstrip())
    assert stopped.last_usage_[0]["tokens_out"] < free.last_usage_[0]["tokens_out"]
    # in a batch of prompts of different lengths, the stop is watched on each row's new tokens only
    batched = ct2(tiny, max_new_tokens=12, stop=[word], batch_size=3).generate(PROMPTS)
    assert batched == [ct2(tiny, max_new_tokens=12, stop=[word]).generate([p])[0] for p in PROMPTS]


def test_loglikelihood_agrees_with_hf(tiny):
    hf = HFGenerator(model=str(tiny), device="cpu")
    contexts = ["paris is the", "the nile", ""]
    continuations = [" capital", " flows through africa", "paris"]  # an empty context is scored after BOS
    expected = hf.loglikelihood(contexts, continuations)
    assert ct2(tiny).loglikelihood(contexts, continuations) == pytest.approx(expected, abs=1e-3)
    assert ct2(tiny, compute_type="int8").loglikelihood(contexts, continuations) == pytest.approx(expected, abs=0.5)


def test_sampling_follows_the_seed(tiny):
    first = ct2(tiny, temperature=1.0, seed=3, max_new_tokens=8).generate(PROMPTS)
    assert first == ct2(tiny, temperature=1.0, seed=3, max_new_tokens=8).generate(PROMPTS)
    assert first != ct2(tiny, max_new_tokens=8).generate(PROMPTS)


def test_a_call_can_override_the_generators_sampling(tiny):
    greedy = ct2(tiny, max_new_tokens=8).generate(PROMPTS)
    assert ct2(tiny, temperature=1.0, seed=3, max_new_tokens=8).generate(PROMPTS, temperature=0.0) == greedy
    assert ct2(tiny, seed=3, max_new_tokens=8).generate(PROMPTS, temperature=1.0, top_p=0.9) == ct2(
        tiny, temperature=1.0, seed=3, max_new_tokens=8).generate(PROMPTS, top_p=0.9)


def test_identity_names_compute_type_and_engine(tiny):
    a, b = ct2(tiny).fingerprint(), ct2(tiny, compute_type="int8").fingerprint()
    assert a["model"] == b["model"] and a["compute_type"] == "float32" and b["compute_type"] == "int8"
    assert a["engine"].startswith("ctranslate2==")
    assert CT2Generator(model=str(tiny), device="cpu").compute_type_ == "int8"


def test_bad_compute_type_is_a_clear_error(tiny):
    with pytest.raises(ConfigError, match="compute_type must be one of"):
        ct2(tiny, compute_type="int3").validate()


def test_a_lora_component_refuses_ct2_and_names_hf(tiny):
    from retbench.engine.capabilities import check_generator

    class Parametric:
        name = "prag"
        generator_requires = frozenset({"lora"})

    gen = ct2(tiny)
    with pytest.raises(ConfigError) as error:
        check_generator([("reader", Parametric())], gen, alternatives=[HFGenerator, CT2Generator])
    message = str(error.value)
    assert "reader 'prag'" in message and "generator 'ct2' cannot" in message and "--generator hf" in message
    assert getattr(gen, "lm_", None) is None  # refused before anything was loaded
    check_generator([("reader", Parametric())], HFGenerator(model=str(tiny)), alternatives=[CT2Generator])


def test_a_shared_prompt_prefix_run_once_gives_the_same_answers(tiny):
    prompts = [f"answer briefly. the nile and the amazon are rivers. question {p}" for p in PROMPTS]
    shared = ct2(tiny, max_new_tokens=6, batch_size=3)
    assert shared.generate(prompts) == ct2(tiny, max_new_tokens=6, batch_size=3, shared_prefix=False).generate(prompts)
    assert ct2(tiny).fingerprint()["shared_prefix"] is True


def test_shared_prefix_length_leaves_every_row_a_token_of_its_own():
    from retbench_readers.ct2_generator import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix_length([[1, 2], [1, 2, 3]]) == 1
    assert shared_prefix_length([[1, 2, 3]]) == 0


def test_the_cpu_instruction_set_is_the_widest_the_cpu_reports_and_enters_the_identity(tiny, tmp_path, monkeypatch):
    from retbench_readers.ct2_generator import widest_cpu_isa

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse avx avx2 fma avx512f avx512bw avx512dq avx512vl\n")
    assert widest_cpu_isa(cpuinfo) == "AVX512"
    cpuinfo.write_text("flags : fpu sse avx avx2 fma avx512f\n")
    assert widest_cpu_isa(cpuinfo) == "AVX2"
    assert widest_cpu_isa(tmp_path / "missing") is None
    monkeypatch.delenv("CT2_FORCE_CPU_ISA", raising=False)
    assert ct2(tiny, cpu_isa="AVX2").fingerprint()["cpu_isa"] == "AVX2"
    assert ct2(tiny, cpu_isa="engine").fingerprint()["cpu_isa"] == "engine"
    monkeypatch.setenv("CT2_FORCE_CPU_ISA", "AVX")
    assert ct2(tiny, cpu_isa="AVX2").fingerprint()["cpu_isa"] == "AVX", "the engine's variable wins"
    with pytest.raises(ConfigError, match="cpu_isa must be one of auto, engine, AVX512, AVX2, AVX"):
        ct2(tiny, cpu_isa="SSE").validate()


def test_batches_decoded_in_parallel_give_the_answers_of_one_batch_at_a_time(tiny):
    prompts = PROMPTS * 3
    word = ct2(tiny, max_new_tokens=12).generate([PROMPTS[0]])[0].split()[1]
    settings = {"max_new_tokens": 12, "batch_size": 2, "stop": [word]}
    parallel = ct2(tiny, parallel_batches=3, threads=3, **settings)
    assert parallel.generate(prompts) == ct2(tiny, parallel_batches=1, **settings).generate(prompts)
    assert parallel.lm_.num_generators == 3, "three batches decoded at once"
    sampled = {"temperature": 1.0, "seed": 3, "max_new_tokens": 8, "batch_size": 1, "parallel_batches": 3}
    assert ct2(tiny, **sampled).generate(prompts) == ct2(tiny, **sampled).generate(prompts), "seeded: repeatable"
    with pytest.raises(ConfigError, match="parallel_batches must be auto or an integer >= 1"):
        ct2(tiny, parallel_batches=0).validate()


def test_threads_follow_omp_num_threads_when_not_given(tiny, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert ct2(tiny).threads_ == 1 and ct2(tiny).parallel_batches_ == 1
    assert ct2(tiny, threads=3).threads_ == 3
