"""Generation engines on the same prompts, same machine, one run: the `hf` generator (transformers,
float32), a bare ``model.generate`` loop, and the `ct2` generator (CTranslate2) in int8 and float32.

    .venv/bin/python benchmarks/generators.py [--questions 16] [--batch-size 8] [--repeats 3]
        [--threads 2] [--passages 3] [--records RECORD.json ...]

Prompts: the `rag` reader's short-answer prompt with ``--passages`` (3) passages for the embedded
sample dataset's questions (offline, always there), greedy, 32 new tokens, batches of 8. With 3
passages a prompt is ~480 tokens and prefill dominates; ``--passages 0`` (closed book, ~60
tokens) measures decoding. After one
untimed warm-up each, the settings run interleaved ``--repeats`` times (a shared machine's
drifts then hit all of them); the table gives medians of questions/s and generated tokens/s,
the ratio to `hf`, and how many of the generations equal `hf`'s exactly. `ct2` runs with its
defaults (one batch per thread decoded at once), and once more with ``parallel_batches=1``
(every thread on one batch), which is what its speed-up owes to decoding batches side by side.

``--records``: RunRecords of the same `rag` run with different generators (e.g. NQ 200 with
``--generator hf`` and ``--generator ct2``); their answers are read back from the cache's answer
stage and compared to the first record's, next to each record's EM / F1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from retbench_readers.ct2_generator import CT2Generator
from retbench_readers.hf_generator import HFGenerator
from retbench_readers.prompts import build_prompt
from rich.console import Console
from rich.table import Table

from retbench.engine.cache import Cache
from retbench.data.datasets.sample import SampleDataset

MAX_NEW_TOKENS = 32
MODEL = "offline:smollm2-135m-instruct"


def prompts(n: int, passages_per_prompt: int = 3) -> list[str]:
    split = SampleDataset().load("test", workdir=Path(tempfile.mkdtemp()))
    passages = list(split.corpus)
    questions = list(split.queries.values())[:n]
    template = "short" if passages_per_prompt else "closed-book"
    return [build_prompt(template, q, passages[i % 100 : i % 100 + passages_per_prompt])
            for i, q in enumerate(questions)]


def timed(gen: Any, texts: list[str]) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    outputs = gen.generate(texts, max_new_tokens=MAX_NEW_TOKENS)
    return time.perf_counter() - start, sum(u["tokens_out"] for u in gen.last_usage_), outputs


def bare(model: Any, tokenizer: Any, texts: list[str], batch_size: int) -> tuple[float, int, list[str]]:
    """transformers' own ``generate`` with no harness: chat template, left-padded batches."""
    formatted = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                               add_generation_prompt=True) for t in texts]
    tokens, outputs = 0, []
    start = time.perf_counter()
    for i in range(0, len(formatted), batch_size):
        batch = tokenizer(formatted[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        tokens += int((new != tokenizer.pad_token_id).sum())
        outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    return time.perf_counter() - start, tokens, outputs


def speed(args: argparse.Namespace) -> None:
    texts = prompts(args.questions, args.passages)
    hf = HFGenerator(model=args.model, batch_size=args.batch_size, device="cpu")
    model, tokenizer = hf.load()
    torch.set_num_threads(args.threads)
    engines = {
        "hf float32": lambda: timed(hf, texts),
        "bare generate float32": lambda: bare(model, tokenizer, texts, args.batch_size),
        **{f"ct2 {ct}": (lambda g: lambda: timed(g, texts))(
            CT2Generator(model=args.model, compute_type=ct, device="cpu", threads=args.threads,
                         batch_size=args.batch_size)) for ct in ("int8", "float32")},
        "ct2 int8, one batch at a time": (lambda g: lambda: timed(g, texts))(
            CT2Generator(model=args.model, compute_type="int8", device="cpu", threads=args.threads,
                         batch_size=args.batch_size, parallel_batches=1)),
    }
    for work in engines.values():  # warm-up (and the one-time load / conversion), untimed
        work()
    runs: dict[str, list[tuple[float, int, list[str]]]] = {label: [] for label in engines}
    for _ in range(args.repeats):
        for label, work in engines.items():
            runs[label].append(work())
    reference = runs["hf float32"][0][2]
    hf_qps = statistics.median(len(texts) / s for s, _, _ in runs["hf float32"])
    table = Table(title=f"{args.model}: {len(texts)} prompts with {args.passages} passages, {MAX_NEW_TOKENS} new "
                        f"tokens, batch {args.batch_size}, {args.threads} threads, median of {args.repeats}")
    for column in ("engine", "questions/s", "tokens/s", "ratio vs hf", "outputs equal to hf's"):
        table.add_column(column, justify="right")
    for label, r in runs.items():
        qps = statistics.median(len(texts) / s for s, _, _ in r)
        tps = statistics.median(t / s for s, t, _ in r)
        same = sum(a == b for a, b in zip(r[0][2], reference))
        table.add_row(label, f"{qps:.2f}", f"{tps:.1f}", f"{qps / hf_qps:.2f}x", f"{same}/{len(texts)}")
    Console().print(table)


def stage_answers(record: dict[str, Any], cache: Cache) -> dict[str, str]:
    """The answers of a record's run, read back from its (cached) answer stage."""
    stage = cache.stage("answer", record["stages"]["answer"]["key"])
    manifest = stage.manifest()
    return {a["qid"]: a["text"] for i in range(manifest["shards"])
            for a in stage.read_shard(i, manifest["shard_size"])["answers"]}


def agreement(paths: list[str]) -> None:
    cache = Cache()
    records = [json.loads(Path(p).read_text()) for p in paths]
    answers = [stage_answers(r, cache) for r in records]
    table = Table(title=f"{records[0]['dataset']['name']} {records[0]['dataset']['queries']} questions: answers "
                        f"compared with {records[0]['components']['generator']['name']}'s")
    for column in ("generator", "compute type", "EM", "F1", "s/question", "answers equal"):
        table.add_column(column, justify="right")
    for record, found in zip(records, answers):
        gen = record["components"]["generator"]
        same = sum(found.get(q) == a for q, a in answers[0].items())
        table.add_row(gen["name"], gen.get("fingerprint", {}).get("compute_type", gen["params"].get("dtype", "")),
                      f"{record['metrics']['EM']:.3f}", f"{record['metrics']['F1']:.3f}",
                      f"{record['cost'].get('seconds_per_question', float('nan')):.3f}",
                      f"{same}/{len(answers[0])} ({same / len(answers[0]):.0%})")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passages", type=int, default=3,
                        help="passages per prompt (0: closed book); long prompts make prefill dominate")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--records", nargs="*", help="RunRecords of one rag run with different generators.")
    args = parser.parse_args()
    if args.records:
        agreement(args.records)
    else:
        speed(args)


if __name__ == "__main__":
    main()
