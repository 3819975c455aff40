"""The `hf` generator against a bare ``model.generate`` loop on the same prompts, in one run,
and batched against one-at-a-time generation.

    .venv/bin/python benchmarks/hf_generator.py [--questions 32] [--batch-size 8] [--repeats 3]
        [--model offline:smollm2-135m-instruct]

Prompts: the `rag` reader's short-answer prompt with three passages, for the embedded sample
dataset's questions (offline, always there). Both sides run greedy decoding of 32 new tokens with the same chat-formatted, left-padded
batches; the reference is transformers' own ``generate`` with no harness around it.
Reports questions/s and generated tokens/s (medians), and the harness/reference ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from retbench_readers.hf_generator import HFGenerator
from retbench_readers.prompts import build_prompt
from rich.console import Console
from rich.table import Table

from retbench.data.datasets.sample import SampleDataset

MAX_NEW_TOKENS = 32


def prompts(n: int) -> list[str]:
    split = SampleDataset().load("test", workdir=Path(tempfile.mkdtemp()))
    passages = list(split.corpus)
    return [build_prompt("short", q, passages[i % 100 : i % 100 + 3]) for i, q in enumerate(list(split.queries.values())[:n])]


def harness(gen: HFGenerator, texts: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    gen.generate(texts, max_new_tokens=MAX_NEW_TOKENS)
    return time.perf_counter() - start, sum(u["tokens_out"] for u in gen.last_usage_)


def bare(model, tokenizer, texts: list[str], batch_size: int) -> tuple[float, int]:
    formatted = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                               add_generation_prompt=True) for t in texts]
    formatted.sort(key=len, reverse=True)
    tokens = 0
    start = time.perf_counter()
    for i in range(0, len(formatted), batch_size):
        batch = tokenizer(formatted[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        tokens += int((new != tokenizer.pad_token_id).sum())
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="offline:smollm2-135m-instruct")
    args = parser.parse_args()
    texts = prompts(args.questions)
    batched = HFGenerator(model=args.model, batch_size=args.batch_size)
    single = HFGenerator(model=args.model, batch_size=1)
    model, tokenizer = batched.load()
    single.lm_, single.tokenizer_, single.usage_ = model, tokenizer, dict(batched.usage_)
    settings = {"harness, batched": lambda: harness(batched, texts),
                "bare generate, batched": lambda: bare(model, tokenizer, texts, args.batch_size),
                "harness, one at a time": lambda: harness(single, texts)}
    bare(model, tokenizer, texts[: args.batch_size], args.batch_size)  # warm-up, untimed
    runs: dict[str, list[tuple[float, int]]] = {label: [] for label in settings}
    for _ in range(args.repeats):  # interleaved, so drifts of a shared machine hit every setting
        for label, work in settings.items():
            runs[label].append(work())
    results = {label: (statistics.median(len(texts) / s for s, _ in r), statistics.median(t / s for s, t in r))
               for label, r in runs.items()}
    table = Table(title=f"hf generator, {len(texts)} questions, {MAX_NEW_TOKENS} new tokens, "
                        f"batch {args.batch_size}, median of {args.repeats}")
    for column in ("setting", "questions/s", "tokens/s", "ratio vs bare batched (questions/s)"):
        table.add_column(column, justify="right")
    reference = results["bare generate, batched"][0]
    for label, (qps, tps) in results.items():
        table.add_row(label, f"{qps:.2f}", f"{tps:.1f}", f"{qps / reference:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
