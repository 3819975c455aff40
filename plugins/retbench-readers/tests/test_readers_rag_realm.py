from __future__ import annotations

import pytest
import torch

import retbench_readers.plugin
from retbench import ConfigError, Injection, Passage, RunConfig, evaluate
from retbench.testing import make_plugin_manager
from retbench_readers.prompts import answer_sentence, build_prompt, extract_answer
from retbench_readers.rag import RagReader
from retbench_readers.realm import RealmReader

PASSAGES = [Passage("d1", "Paris is the capital of France.", "France"),
            Passage("d2", "Berlin is the capital of Germany.", "Germany")]


@pytest.mark.parametrize("output, answer", [
    ("Paris.", "Paris"),
    ("  \nAnswer: \"Paris\"\nQuestion: next", "Paris"),
    ("France's capital is on the Seine. So the answer is: Paris.", "Paris"),
    ("The answer is Barack Obama", "Barack Obama"),
    ("Question: Who died first?\nAnswer: Chiang Chung-Ling", "Chiang Chung-Ling"),
    ("Question: Who died first?", ""),
])
def test_short_answer_extraction(output, answer):
    assert extract_answer(output) == answer


@pytest.mark.parametrize("output, answer", [
    (" Paris, the capital.", "Paris"),
    (" Barack Obama\nQuestion: next", "Barack Obama"),
    (": yes. Because", "yes"),
    ("The answer is Berlin.", "Berlin"),
    (" 1 January 1990.", "1 January 1990"),
])
def test_first_clause_extraction_cuts_where_the_reference_does(output, answer):
    assert extract_answer(output, "first-clause") == answer


def test_direct_template_differs_by_the_passages_only():
    with_passages = build_prompt("direct", "Who wrote it", PASSAGES)
    closed = build_prompt("direct", "Who wrote it", [])
    assert with_passages.endswith("Question: Who wrote it?") and closed.endswith("Question: Who wrote it?")
    assert with_passages.replace("Passage 1: France: Paris is the capital of France.\n"
                                 "Passage 2: Germany: Berlin is the capital of Germany.", "") == closed
    assert answer_sentence("Paris ", "The answer is") == "The answer is Paris."


def test_prompts_hold_the_passages_and_the_question():
    prompt = build_prompt("short", "capital of France?", PASSAGES)
    assert "Passage 1: France: Paris is the capital of France." in prompt and prompt.endswith(
        "Question: capital of France?\nAnswer:")
    assert "Passage" not in build_prompt("closed-book", "q?", [])
    assert build_prompt("Q: {question} / {passages}", "q?", PASSAGES[:1]) == "Q: q? / Passage 1: France: Paris is the capital of France."
    with pytest.raises(ConfigError, match="neither a known name"):
        build_prompt("no placeholders", "q", [])


class Recorder:
    name = "recorder"

    def __init__(self):
        self.prompts = []
        self.prefixes = []

    def format(self, prompt):
        return f"<user>{prompt}<assistant>"

    def generate(self, prompts, *, max_new_tokens, prefix=""):
        self.calls = getattr(self, "calls", []) + [len(prompts)]
        self.prompts += prompts
        self.prefixes += [prefix] * len(prompts)
        self.last_usage_ = [{"tokens_in": len(p), "tokens_out": 1} for p in prompts]
        return [" Paris, in France." if prefix else "So the answer is: Paris." for _ in prompts]


def test_rag_reader_uses_k_passages_and_the_closed_book_mode_none():
    reader, recorder = RagReader(k=1), Recorder()
    reader.set_generator(recorder)
    answers = reader.answer({"q": "capital of France?"}, {"q": Injection(kind="in-context", passages=PASSAGES)})
    assert answers[0].text == "Paris" and answers[0].extra["tokens_out"] == 1
    assert recorder.prefixes == ["The answer is"]
    assert "Paris is the capital" in recorder.prompts[0] and "Berlin" not in recorder.prompts[0]
    closed = RagReader(mode="no-retrieval")
    closed.set_generator(recorder)
    closed.answer({"q": "capital of France?"}, {"q": Injection(kind="in-context", passages=PASSAGES)})
    assert "Paris is the capital" not in recorder.prompts[-1]
    assert recorder.prompts[-1] == build_prompt("direct", "capital of France?", [])
    short = RagReader(template="short")
    short.set_generator(recorder)
    assert short.answer({"q": "x"}, {"q": Injection(kind="in-context", passages=PASSAGES)})[0].text == "Paris"
    assert recorder.prefixes[-1] == ""


def test_rag_gives_the_generator_every_question_at_once_unless_told_a_batch_size():
    queries = {f"q{i}": f"question {i}?" for i in range(20)}
    injections = {q: Injection(kind="in-context", passages=PASSAGES) for q in queries}
    for batch_size, calls in ((None, [20]), (8, [8, 8, 4])):
        reader, recorder = RagReader(batch_size=batch_size), Recorder()
        reader.set_generator(recorder)
        assert len(reader.answer(queries, injections)) == 20 and recorder.calls == calls


def test_training_text_is_the_answer_prompt_with_its_answer():
    reader, recorder = RagReader(), Recorder()
    reader.set_generator(recorder)
    text = reader.training_text("capital of France", PASSAGES[:1], "Paris")
    assert text == recorder.format(build_prompt("direct", "capital of France", PASSAGES[:1])) + "The answer is Paris."
    assert reader.training_text("q", [], "x").startswith(recorder.format(build_prompt("direct", "q", [])))


def test_unknown_reader_options_fail_before_any_model_loads():
    with pytest.raises(ConfigError, match="extraction"):
        RagReader(extraction="everything").validate()
    with pytest.raises(ConfigError, match="mode"):
        RagReader(mode="oracle").validate()


def test_parametric_injections_are_applied_around_their_question_only():
    from contextlib import contextmanager

    class Parametric(Recorder):
        active = None

        @contextmanager
        def injected(self, payload):
            self.active = payload
            yield
            self.active = None

        def generate(self, prompts, *, max_new_tokens, prefix=""):
            return [f"{self.active}" for _ in super().generate(prompts, max_new_tokens=max_new_tokens, prefix=prefix)]

    reader, generator = RagReader(), Parametric()
    reader.set_generator(generator)
    answers = reader.answer({"a": "q1", "b": "q2"}, {"a": Injection(kind="prag", payload="lora-a"),
                                                      "b": Injection(kind="in-context", passages=PASSAGES)})
    assert [a.text for a in answers] == ["lora-a", "None"]
    reader.set_generator(Recorder())
    with pytest.raises(ConfigError, match="cannot take them"):
        reader.answer({"a": "q1"}, {"a": Injection(kind="prag", payload="lora-a")})


def test_rag_end_to_end_with_a_tiny_llama_reports_tokens(retbench_tiny_llama, retbench_cache):
    pm = make_plugin_manager(retbench_readers.plugin)
    config = RunConfig(dataset="mock", retriever="oracle", reader="rag",
                       generator_args={"model": str(retbench_tiny_llama), "max_new_tokens": 4})
    record = evaluate(config, pm=pm, cache=retbench_cache)
    assert record.components["generator"]["name"] == "hf"
    assert record.components["generator"]["fingerprint"]["model"]["revision"].startswith("sha256:")
    assert {"EM", "F1"} <= set(record.metrics)
    assert record.cost["tokens_in_per_question"] > 10 and 0 < record.cost["tokens_out_per_question"] <= 4
    assert evaluate(config, pm=pm, cache=retbench_cache).cached


def test_a_generator_for_a_reader_that_uses_none_is_an_error(retbench_tiny_llama, retbench_cache):
    config = RunConfig(dataset="mock", retriever="oracle", reader="echo", generator="hf")
    with pytest.raises(ConfigError, match="does not use one"):
        evaluate(config, pm=make_plugin_manager(retbench_readers.plugin), cache=retbench_cache)


def test_realm_distant_supervision_marks_every_matching_span(retbench_tiny_bert):
    reader = RealmReader(model=str(retbench_tiny_bert), max_answer_tokens=4)
    passages = [Passage("a", "paris is in france and paris is big", "x"), Passage("b", "berlin", "y")]
    batch = reader.encode("where is paris", passages)
    gold = reader.gold_spans(batch, ["Paris"])
    assert gold[0].sum() == 2 and gold[1].sum() == 0
    spans = gold[0].nonzero().tolist()
    for start, width in spans:
        text = batch.texts[0][batch.offsets[0][start][0]: batch.offsets[0][start + width][1]]
        assert text == "paris"


def test_realm_marginal_likelihood_sums_over_passages(retbench_tiny_bert):
    # per-passage normalisation without a null passage is version 1's formula
    reader = RealmReader(model=str(retbench_tiny_bert), null_passage="none", span_normalisation="per-passage")
    model = reader.reader()
    passages = [Passage("a", "paris is in france", "x"), Passage("b", "paris again", "y")]
    batch = reader.encode("where is paris", passages)
    gold = reader.gold_spans(batch, ["paris"])
    scores = torch.tensor([2.0, 0.5])
    with torch.no_grad():
        total = model.marginal_log_likelihood(batch, scores, gold)
        logits = model.span_logits(batch).flatten(1).log_softmax(1)
        per_passage = torch.logsumexp(logits.masked_fill(~gold.flatten(1), float("-inf")), 1)
        expected = torch.logsumexp(per_passage + scores.log_softmax(0), 0)
    assert float(total) == pytest.approx(float(expected), abs=1e-5)


def test_realm_joint_normalisation_sums_to_one_over_passage_span_pairs(retbench_tiny_bert):
    reader = RealmReader(model=str(retbench_tiny_bert), null_passage="empty")  # joint is the default
    model = reader.reader()
    batch = reader.encode("where is paris", [Passage("a", "paris is in france", "x"), Passage("b", "paris", "y")])
    assert len(batch.texts) == 3 and batch.passage_mask[-1].tolist()[:2] == [1, 0]
    scores = torch.tensor([2.0, 0.5])
    with torch.no_grad():
        log_p = model.span_log_probs(batch, scores)
        logits = model.span_logits(batch)
    assert float(torch.logsumexp(log_p.flatten(), 0)) == pytest.approx(0.0, abs=1e-5)
    # each passage's share is not its retrieval softmax: the reader's logits move mass between passages
    shares = torch.logsumexp(log_p.flatten(1), 1).exp()
    assert not torch.allclose(shares, torch.cat([scores, model.null_logit.detach()[None]]).softmax(0), atol=1e-3)
    # the null passage holds exactly one candidate, at [CLS]
    assert torch.isfinite(logits[-1]).sum() == 1 and torch.isfinite(logits[-1, 0, 0])


def test_realm_null_passage_changes_the_loss_and_its_gradient(retbench_tiny_bert):
    passages = [Passage("a", "paris is in france", "x"), Passage("b", "berlin is big", "y")]
    scores = torch.tensor([1.0, 0.0])
    losses = {}
    for null in ("empty", "none"):
        reader = RealmReader(model=str(retbench_tiny_bert), null_passage=null)
        model = reader.reader()
        batch = reader.encode("where is paris", passages)
        gold = reader.gold_spans(batch, ["paris"])
        loss = -model.marginal_log_likelihood(batch, scores, gold)
        losses[null] = loss.item()
        if null == "empty":
            loss.backward()
            assert model.null_logit.grad is not None and float(model.null_logit.grad) != 0.0
    assert losses["empty"] > losses["none"]  # the null passage takes probability mass, never the answer


def test_realm_rejects_unknown_choices():
    with pytest.raises(ConfigError, match="null_passage"):
        RealmReader(null_passage="yes")
    with pytest.raises(ConfigError, match="span_normalisation"):
        RealmReader(span_normalisation="global")


def test_realm_training_raises_the_answer_likelihood_and_is_cached(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_readers.plugin)
    args = {"model": str(retbench_tiny_bert), "epochs": 15, "questions_per_step": 2, "learning_rate": 1e-3, "k": 2,
            "train_k": 2, "warmup_ratio": 0.0}
    start = evaluate(RunConfig(dataset="mock", retriever="oracle", reader="realm", reader_args=args),
                     pm=pm, cache=retbench_cache)
    trained = evaluate(RunConfig(dataset="mock", retriever="oracle", reader="realm", reader_args=args,
                                 fit_split="train"), pm=pm, cache=retbench_cache)
    fit = trained.training["fit-reader"]
    # q3's answer is a whole sentence, longer than 10 tokens with the tiny vocabulary: skipped
    assert fit["used_questions"] == 3 and fit["skipped_no_answer_span"] == 1
    assert fit["loss_last_tenth"] < fit["loss_first_tenth"]
    assert trained.metrics["EM"] >= start.metrics["EM"] and trained.metrics["EM"] >= 0.5
    again = evaluate(RunConfig(dataset="mock", retriever="oracle", reader="realm", reader_args=args,
                               fit_split="train"), pm=pm, cache=retbench_cache)
    assert again.cached and again.metrics == trained.metrics


@pytest.mark.parametrize("normalisation", ["joint", "per-passage"])
def test_realm_answers_with_the_null_passage_read_but_never_answering(retbench_tiny_bert, retbench_cache,
                                                                       normalisation):
    args = {"model": str(retbench_tiny_bert), "k": 2, "null_passage": "empty", "span_normalisation": normalisation}
    record = evaluate(RunConfig(dataset="mock", retriever="oracle", reader="realm", reader_args=args),
                      pm=make_plugin_manager(retbench_readers.plugin), cache=retbench_cache)
    assert record.components["reader"]["version"] == "2"
    assert "EM" in record.metrics
