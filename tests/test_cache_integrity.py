"""Cache entries are never served half-replaced, damaged or stale (issue 14: concurrency,
tampering, leftovers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retbench.attribution import RetbenchWarning
from retbench.engine.cache import Cache, Overwrite
from retbench.errors import NotCachedError
from retbench.engine.integrity import remove_leftovers

MOCK_PLUGINS = Path(__file__).parent / "plugins"


def _cli(args, env):
    return subprocess.Popen([sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_reading_while_another_process_overwrites_always(tmp_path):
    """The reader finds the index finished under the lock, then reads it while a second process
    recomputes that index with --overwrite always (it used to clear the folder first)."""
    calls = tmp_path / "calls"
    env = {**os.environ, "RETBENCH_HOME": str(tmp_path / "home"), "RETBENCH_TEST_CALLS": str(calls)}
    args = ["run", "--retriever", "slow-flaky", "--dataset", "sample", "--json"]
    first = _cli(args, env)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    reader = _cli([*args, "--k", "5"], {**env, "RETBENCH_TEST_WAIT_FOR_INDEX": "2"})
    deadline = time.time() + 60
    while "load_index" not in calls.read_text() and time.time() < deadline:
        time.sleep(0.05)
    writer = _cli([*args, "--overwrite", "always"], {**env, "RETBENCH_TEST_SLEEP": "2"})
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert writer.wait(timeout=120) == 0, writer.stderr.read()
    assert calls.read_text().splitlines().count("index") == 2
    assert json.loads(out)["metrics"]


def test_overwrite_always_swaps_in_a_new_entry_and_cleans_leftovers(tmp_path):
    cache = Cache(tmp_path, overwrite=Overwrite.ALWAYS)
    stage = cache.stage("index", "k" * 64)

    def compute(target):
        (target.workdir / "data.txt").write_text("new")
        return {"model": str(target.workdir)}

    manifest, cached = cache.run_stage(stage, compute)
    assert not cached and manifest["model"] == str(stage.workdir), "paths point at the entry, not the staging one"
    assert (stage.workdir / "data.txt").read_text() == "new"
    siblings = sorted(p.name.split(".")[1].split("-")[0] for p in stage.path.parent.iterdir() if p != stage.path)
    assert siblings == ["lock", "new"]  # the staging path: a symlink to the entry
    (stage.path.parent / f"{stage.key}.new-dead").mkdir()  # a killed writer's
    remove_leftovers(stage.path, now=time.time() + 2 * 24 * 3600)
    assert sorted(p.name for p in stage.path.parent.iterdir()) == [stage.key, f"{stage.key}.lock"]


def _run(cache, **overrides):
    from retbench import RunConfig, evaluate
    from retbench.testing import make_plugin_manager

    return evaluate(RunConfig(**{"dataset": "mock", "retriever": "counting", "shard_size": 2, **overrides}),
                    pm=make_plugin_manager(), cache=cache)


def _edit_shard(stage_dir: Path) -> None:
    shard = sorted(stage_dir.glob("shards-*/*.json"))[0]
    data = json.loads(shard.read_text())
    qid = next(iter(data))
    data[qid] = {doc: -score for doc, score in data[qid].items()}  # same ids, reversed scores
    shard.write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", ["edited shard", "manifest shard count", "truncated shard", "truncated manifest",
                                    "edited index", "missing shard"])
def test_a_damaged_entry_is_recomputed_with_a_warning_never_served(damage, retbench_cache):
    from retbench.testing import CountingRetriever

    CountingRetriever.calls.clear()
    first = _run(retbench_cache)
    search = retbench_cache.home / "search" / first.stages["search"]["key"]
    index = next((retbench_cache.home / "index").glob("*/work/index.json"))
    if damage == "edited shard":
        _edit_shard(search)
    elif damage == "manifest shard count":
        manifest = json.loads((search / "manifest.json").read_text())
        (search / "manifest.json").write_text(json.dumps({**manifest, "shards": 1}))
    elif damage == "truncated shard":
        _truncate(sorted(search.glob("shards-*/*.json"))[-1])
    elif damage == "truncated manifest":
        _truncate(search / "manifest.json")
    elif damage == "edited index":
        docs = json.loads(index.read_text())
        index.write_text(json.dumps({doc: [] for doc in docs}))
    else:
        sorted(search.glob("shards-*/*.json"))[0].unlink()
    with pytest.warns(RetbenchWarning, match="is damaged"):
        again = _run(retbench_cache, retriever_args={}) if damage != "edited index" else _run(retbench_cache, k=3)
    assert again.metrics == first.metrics or damage == "edited index"
    if damage == "edited index":
        assert CountingRetriever.calls["index"] == 2, "the index was rebuilt, not loaded"
        assert again.metrics["nDCG@10"] > 0.5
    else:
        assert CountingRetriever.calls["search"] == 4, "searched again"
    assert not again.cached


def test_overwrite_never_names_the_damage(retbench_cache):
    first = _run(retbench_cache)
    _edit_shard(retbench_cache.home / "search" / first.stages["search"]["key"])
    with pytest.raises(NotCachedError, match=r"is damaged \(shards-2/000000.json"):
        _run(Cache(retbench_cache.home, overwrite=Overwrite.NEVER))


def test_an_unreadable_resumable_shard_is_computed_again(retbench_cache):
    from retbench.testing import CountingRetriever

    first = _run(retbench_cache)
    search = retbench_cache.home / "search" / first.stages["search"]["key"]
    (search / "manifest.json").unlink()  # as if the run had been killed before finishing
    _truncate(sorted(search.glob("shards-*/*.json"))[0])
    CountingRetriever.calls.clear()
    with pytest.warns(RetbenchWarning, match="unreadable shard"):
        again = _run(retbench_cache)
    assert again.metrics == first.metrics and CountingRetriever.calls["search"] == 1


def _beir_run(folder, home):
    from retbench import RunConfig, evaluate
    from retbench.testing import make_plugin_manager

    return evaluate(RunConfig(dataset=f"beir:{folder}", retriever="counting"), pm=make_plugin_manager(),
                    cache=Cache(home))


def test_a_corpus_edited_in_place_with_the_same_size_and_mtime_is_prepared_again(beir_folder, tmp_path):
    folder = beir_folder()
    first = _beir_run(folder, tmp_path / "home")
    corpus = folder / "corpus.jsonl"
    stat = corpus.stat()
    corpus.write_bytes(corpus.read_bytes().replace(b"number 0 alpha", b"number 0 omega"))
    os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert corpus.stat().st_size == stat.st_size and corpus.stat().st_mtime_ns == stat.st_mtime_ns
    second = _beir_run(folder, tmp_path / "home")
    assert second.dataset["corpus_fingerprint"] != first.dataset["corpus_fingerprint"]
    assert not second.cached


def test_a_damaged_prepared_corpus_is_prepared_again(beir_folder, tmp_path):
    folder = beir_folder()
    first = _beir_run(folder, tmp_path / "home")
    arrow = next((tmp_path / "home" / "prepared" / "corpus").glob("*/corpus.arrow"))
    _truncate(arrow)
    with pytest.warns(RetbenchWarning, match="prepared corpus .* is damaged"):
        second = _beir_run(folder, tmp_path / "home")
    assert second.metrics == first.metrics and second.dataset["documents"] == 5


def test_a_killed_preparation_leaves_no_temporary_file(beir_folder, tmp_path):
    folder = beir_folder()
    prepared = tmp_path / "home" / "prepared" / "corpus"
    prepared.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = prepared / f".{'0' * 64}.{dead.pid}.arrow.tmp"  # another corpus, its writer gone
    stale.write_bytes(b"x" * 1000)
    _beir_run(folder, tmp_path / "home")
    assert not list(prepared.glob(".*.tmp"))


def _read_only(folder: Path, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run ``command`` with ``folder`` bind-mounted read-only in a user namespace (root ignores
    file modes, a read-only mount it cannot)."""
    import shlex
    import shutil

    import pytest

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("no user namespaces (unshare -rm) to mount the cache read-only")
    script = (f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && "
              f"mount -o remount,bind,ro {shlex.quote(str(folder))} && exec {shlex.join(command)}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env)


def test_a_read_only_cache_serves_finished_runs_and_names_itself_otherwise(beir_folder, tmp_path):
    folder = beir_folder()
    home = tmp_path / "home"
    env = {**os.environ, "RETBENCH_HOME": str(home)}
    base = [sys.executable, "-m", "retbench", "--plugins-dir", str(MOCK_PLUGINS), "run", "--retriever", "counting",
            "--dataset", f"beir:{folder}"]
    assert subprocess.run(base, capture_output=True, env=env).returncode == 0
    cached = _read_only(home, [*base, "--json"], env)
    assert cached.returncode == 0, cached.stderr
    assert json.loads(cached.stdout)["metrics"]["nDCG@10"] > 0.5
    assert "read-only cache: run record not saved" in cached.stderr
    new = _read_only(home, [*base, "--k", "3"], env)
    assert new.returncode == 1
    assert f"cache folder {home / 'search'} is read-only: stage 'search' is not cached there" in new.stderr


def test_a_full_disk_names_the_stage_and_the_file(retbench_cache, monkeypatch):
    import errno

    from retbench.errors import RetbenchError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("retbench.engine.cache.os.replace", full)
    with pytest.raises(RetbenchError, match=r"^stage 'index': disk full or over quota writing "
                                            r"\S*/index/[0-9a-f]{64}/manifest.json \(No space left on device\)"):
        _run(retbench_cache)


def test_a_same_size_same_mtime_edit_after_a_verified_read_is_still_caught(retbench_cache):
    first = _run(retbench_cache)
    assert _run(retbench_cache).cached  # this read verified the entry and memoised its file stats
    search = retbench_cache.home / "search" / first.stages["search"]["key"]
    assert (search / ".verified.json").is_file()
    shard = sorted(search.glob("shards-*/*.json"))[0]
    stat = shard.stat()
    text = shard.read_text()
    edited = text.replace('"d1"', '"d9"', 1) if '"d1"' in text else text.replace('"d2"', '"d9"', 1)
    assert edited != text and len(edited) == len(text)
    shard.write_text(edited)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.warns(RetbenchWarning, match="changed"):
        again = _run(retbench_cache)
    assert not again.cached and again.metrics == first.metrics


def test_a_prepared_corpus_flipped_in_place_is_prepared_again(beir_folder, tmp_path):
    folder = beir_folder()
    first = _beir_run(folder, tmp_path / "home")
    arrow = next((tmp_path / "home" / "prepared" / "corpus").glob("*/corpus.arrow"))
    data = bytearray(arrow.read_bytes())
    at = data.find(b"alpha")
    data[at:at + 5] = b"omega"  # same size, same row count: only the hash tells
    arrow.write_bytes(bytes(data))
    with pytest.warns(RetbenchWarning, match="corpus.arrow changed"):
        second = _beir_run(folder, tmp_path / "home")
    assert second.metrics == first.metrics
