from __future__ import annotations

import pytest

import retbench_dense.plugin
from retbench import ConfigError, RunConfig, evaluate
from retbench.testing import make_plugin_manager, mock_split
from retbench_dense.negatives import AnnNegatives, Bm25Hard, InBatch, RandomNegatives
from retbench_dense.retriever import DPR
from retbench_dense.training import false_negative_mask, training_items

ITEMS = training_items(mock_split("train"))


def tiny_dpr(retbench_tiny_bert, **params) -> DPR:
    defaults = {"model": str(retbench_tiny_bert), "pooling": "mean", "train_batch_size": 2, "learning_rate": 1e-3,
                "warmup_ratio": 0.0, "epochs": 20}
    return DPR(**{**defaults, **params})


def test_training_items_keep_questions_with_a_positive_in_the_corpus():
    assert [(i["qid"], i["positives"]) for i in ITEMS] == [("q1", ["d1"]), ("q2", ["d2"]), ("q3", ["d5"]),
                                                         ("q4", ["d4"])]


def test_a_positive_of_the_question_is_not_its_negative():
    batch = [{"qid": "a", "positives": ["p1", "p2"]}, {"qid": "b", "positives": ["p2"]}]
    assert false_negative_mask(batch, ["p1", "p2", "n"]).tolist() == [[False, True, False], [False, False, False]]


def test_loss_goes_down(retbench_tiny_bert, tmp_path):
    retriever = tiny_dpr(retbench_tiny_bert)
    report = retriever.fit(mock_split("train"), negatives=RandomNegatives(), workdir=tmp_path, seed=1)
    assert report["steps"] == 40 and len(report["loss_curve"]) == 40
    assert report["loss_last_tenth"] < 0.5 * report["loss_first_tenth"]
    assert (tmp_path / "model" / "query" / "model.safetensors").is_file()


def test_training_changes_the_ranking_and_is_reproducible(retbench_tiny_bert, tmp_path):
    split = mock_split()
    start = tiny_dpr(retbench_tiny_bert)
    start.index(split.corpus, workdir=tmp_path / "start")
    trained = [tiny_dpr(retbench_tiny_bert) for _ in range(2)]
    runs = []
    for n, retriever in enumerate(trained):
        retriever.fit(mock_split("train"), negatives=InBatch(), workdir=tmp_path / f"fit{n}", seed=3)
        retriever.index(split.corpus, workdir=tmp_path / f"index{n}")
        runs.append(retriever.search(split.queries, k=6))
    assert {q: list(r) for q, r in runs[0].items()} == {
        q: list(r) for q, r in runs[1].items()}
    assert all(next(iter(runs[0][q])) == next(iter(split.qrels[q])) for q in ("q1", "q2", "q4"))
    assert start.search(split.queries, k=6) != runs[0]


def test_killed_training_resumes_from_its_checkpoint(retbench_tiny_bert, tmp_path):
    class Crash(InBatch):
        calls = 0
        crash_at = 3

        def sample(self, batch, **kwargs):
            Crash.calls += 1
            return super().sample(batch, **kwargs)

        def on_step(self, step, **kwargs):
            if step == self.crash_at:
                self.crash_at = None
                raise RuntimeError("killed")

    sampler = Crash()
    with pytest.raises(RuntimeError, match="killed"):
        tiny_dpr(retbench_tiny_bert, max_steps=4, checkpoint_every=1).fit(
            mock_split("train"), negatives=sampler, workdir=tmp_path, seed=0)
    Crash.calls = 0
    report = tiny_dpr(retbench_tiny_bert, max_steps=4, checkpoint_every=1).fit(
        mock_split("train"), negatives=sampler, workdir=tmp_path, seed=0)
    assert Crash.calls == 2  # steps 3 and 4: steps 1 and 2 came from the checkpoint
    assert report["steps"] == 4


def test_bm25_hard_negatives_are_top_ranked_non_positives(tmp_path):
    split = mock_split("train")
    sampler = Bm25Hard()
    sampler.prepare(ITEMS, corpus=split.corpus, retriever=None, hard_negatives={}, workdir=tmp_path)
    chosen = sampler.sample(ITEMS[:2], corpus=split.corpus, retriever=None, k=1, seed=0)
    assert chosen[0][0] in ("d2", "d3") and chosen[1][0] in ("d1", "d3")  # the other capitals
    assert all("d1" not in c for c in sampler.candidates_["q1"])
    given = Bm25Hard()
    given.prepare(ITEMS, corpus=split.corpus, retriever=None, hard_negatives={"q1": ["d1", "d6"]}, workdir=tmp_path)
    assert given.sample(ITEMS[:1], corpus=split.corpus, retriever=None, k=1, seed=0) == [["d6"]]
    assert given.log == [{"dataset_negatives": 1, "bm25_queries": 3}]


def test_random_negatives_exclude_positives_and_follow_the_seed():
    corpus = mock_split().corpus
    first = RandomNegatives().sample(ITEMS, corpus=corpus, retriever=None, k=3, seed=7)
    assert first == RandomNegatives().sample(ITEMS, corpus=corpus, retriever=None, k=3, seed=7)
    assert all(len(set(c)) == 3 and not set(c) & set(i["positives"]) for c, i in zip(first, ITEMS))


def test_ann_negatives_refresh_on_schedule_and_are_logged(retbench_tiny_bert, tmp_path):
    sampler = AnnNegatives(refresh_every=2, depth=5)
    report = tiny_dpr(retbench_tiny_bert, epochs=3).fit(mock_split("train"), negatives=sampler, workdir=tmp_path, seed=0)
    assert [entry["step"] for entry in report["negatives_log"]] == [0, 2, 4]  # none after the last step (6)
    assert report["negatives"] == "ann"
    for item in ITEMS:
        assert not set(sampler.candidates_[item["qid"]]) & set(item["positives"])


def test_async_ann_refresh_trains_on_while_a_snapshot_is_indexed(retbench_tiny_bert, tmp_path):
    sampler = AnnNegatives(refresh_every=2, depth=5, refresh="async")
    report = tiny_dpr(retbench_tiny_bert, epochs=3).fit(mock_split("train"), negatives=sampler, workdir=tmp_path, seed=0)
    log = report["negatives_log"]
    assert log[0]["step"] == 0 and "applied_at" not in log[0]  # the first refresh is synchronous
    assert {entry["step"] for entry in log[1:]} <= {2, 4} and log[1:]
    for entry in log[1:]:  # a refresh takes over after the step its snapshot was taken at, or never
        assert entry["applied_at"] is None or entry["applied_at"] > entry["step"]
    assert sampler.background_.running is None
    for item in ITEMS:
        assert not set(sampler.candidates_[item["qid"]]) & set(item["positives"])


def test_background_refresher_swaps_in_negatives_only_once_they_are_ready(tmp_path):
    import threading

    from retbench_dense.negatives import AnnRefresher, BackgroundRefresher

    release = threading.Event()

    class SlowRefresher(AnnRefresher):
        def refresh(self, items, *, corpus, retriever, step, workdir=None):
            release.wait(10)
            self.log.append({"step": step})
            return {"q1": [f"from-step-{step}"]}

    class Live:
        def encoder(self):
            import torch

            return torch.nn.Linear(2, 2)

    background = BackgroundRefresher(SlowRefresher(every=2, depth=5))
    background.start([], corpus=None, retriever=Live(), step=2, workdir=tmp_path)
    assert background.collect(3) is None  # still indexing: training keeps the old negatives
    background.start([], corpus=None, retriever=Live(), step=4, workdir=tmp_path)
    assert background.due_while_running  # ANCE's generator picks the latest model up afterwards
    release.set()
    background.running.result()
    assert background.collect(5) == {"q1": ["from-step-2"]}
    assert background.log == [{"step": 2, "applied_at": 5}]
    background.close()


def test_model_snapshot_is_frozen_apart_from_the_live_model(retbench_tiny_bert):
    import torch

    from retbench_dense.negatives import model_snapshot

    live = tiny_dpr(retbench_tiny_bert)
    snapshot = model_snapshot(live)
    weight = next(live.encoder().parameters())
    with torch.no_grad():
        weight.add_(1.0)
    assert not torch.equal(weight, next(snapshot.encoder().parameters()))
    assert snapshot.encoder() is not live.encoder()


def test_ann_refresh_mode_is_checked_before_training(retbench_tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="refresh must be 'sync' or 'async'"):
        tiny_dpr(retbench_tiny_bert).fit(mock_split("train"), negatives=AnnNegatives(refresh="later"),
                                         workdir=tmp_path, seed=0)
    assert "refresh" not in AnnNegatives().get_params()  # defaults keep old fit keys
    assert AnnNegatives(refresh="async").get_params()["refresh"] == "async"


def test_fit_through_the_pipeline_is_cached_and_recorded(retbench_tiny_bert, retbench_cache):
    pm = make_plugin_manager(retbench_dense.plugin)
    config = RunConfig(dataset="mock", retriever="dpr", fit_split="train",
                       retriever_args={"model": str(retbench_tiny_bert), "pooling": "mean", "epochs": 2, "train_batch_size": 2})
    record = evaluate(config, pm=pm, cache=retbench_cache)
    training = record.training["fit"]
    assert training["negatives"] == "bm25-hard" and training["train"]["split"] == "train"
    assert training["steps"] == 4 and "model" in training
    assert record.components["negatives"]["name"] == "bm25-hard"
    again = evaluate(config, pm=pm, cache=retbench_cache)
    assert again.cached and again.metrics == record.metrics


def test_retbench_train_on_the_command_line(retbench_tiny_bert, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from retbench.cli import cli

    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    args = ["train", "--retriever", "ance", "--retriever-arg", f"model={retbench_tiny_bert}", "--retriever-arg", "max_steps=2",
            "--negatives-arg", "refresh_every=1", "--dataset", "sample", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert '"fit"' in result.output and (tmp_path / "home" / "fit").is_dir()


class _Payload:
    """Pickles to a call that leaves a marker file: what a tampered checkpoint could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_holding_code_is_refused_not_run(retbench_tiny_bert, tmp_path):
    import torch

    marker = tmp_path / "ran"
    torch.save({"model": _Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported"):
        tiny_dpr(retbench_tiny_bert, max_steps=1).fit(mock_split("train"), negatives=InBatch(), workdir=tmp_path,
                                                      seed=0)
    assert not marker.exists()


@pytest.mark.parametrize(("picks", "message"), [(lambda item: ["not-a-doc"], "is not in the corpus"),
                                                (lambda item: item["positives"][:1], "one of its positives")])
def test_invalid_negatives_are_refused_naming_the_sampler(retbench_tiny_bert, tmp_path, picks, message):
    from retbench.attribution import ComponentError

    class Broken(InBatch):
        name = "broken-negatives"

        def sample(self, batch, **kwargs):
            return [picks(item) for item in batch]

    with pytest.raises(ComponentError, match=f"negative sampler 'broken-negatives': negative .* {message}"):
        tiny_dpr(retbench_tiny_bert, max_steps=1).fit(mock_split("train"), negatives=Broken(), workdir=tmp_path,
                                                      seed=0)
