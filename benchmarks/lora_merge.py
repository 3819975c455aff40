"""PRAG's per-question merge of several passage LoRAs: retbench's ``merged_lora`` against
peft's own path, in one run.

    .venv/bin/python benchmarks/lora_merge.py [--passages 3] [--repeats 5] [--model offline:smollm2-135m-instruct]

The reference loads each passage's LoRA as a peft adapter, combines them with
``add_weighted_adapter(combination_type="cat")`` (the sum of the passages' B @ A), merges the
result into the weights and unmerges it afterwards. retbench sums ``scaling * B @ A`` into the
same weights and copies the originals back. Both start from the same random rank-2 factors on
gate/up/down_proj. Reports the median seconds per question (merge + restore, no generation),
the ratio, whether both merged models agree, and how far each restored model is from the base
weights (retbench restores bit for bit; peft's unmerge subtracts, which rounds).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from rich.console import Console
from rich.table import Table
from transformers import AutoModelForCausalLM

from retbench import LoraWeights
from retbench.model_specs import resolve_model
from retbench_parametric.translator import target_modules
from retbench_readers.lora_merge import merged_lora

TARGETS = ["gate_proj", "up_proj", "down_proj"]


def random_loras(model, count: int) -> list[LoraWeights]:
    generator = torch.Generator().manual_seed(0)
    loras = []
    for _ in range(count):
        factors = {name: (torch.randn(2, fan_in, generator=generator) * 0.02,
                          torch.randn(fan_out, 2, generator=generator) * 0.02)
                   for name, _, _, fan_in, fan_out in target_modules(model, TARGETS)}
        loras.append(LoraWeights(factors=factors, scaling=16.0))
    return loras


def peft_state(lora: LoraWeights) -> dict[str, torch.Tensor]:
    state = {}
    for name, (a, b) in lora.factors.items():
        state[f"base_model.model.{name}.lora_A.weight"] = a
        state[f"base_model.model.{name}.lora_B.weight"] = b
    return state


def weights_of(model, prefix: str = "") -> dict[str, torch.Tensor]:
    return {name: module.weight.detach().clone() for name, module in model.named_modules()
            if name.rsplit(".", 1)[-1] in TARGETS and hasattr(module, "weight")
            and not name.endswith(("lora_A", "lora_B")) and "lora_" not in name}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="offline:smollm2-135m-instruct")
    parser.add_argument("--passages", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = resolve_model(args.model).path
    ours_model = AutoModelForCausalLM.from_pretrained(path).eval()
    loras = random_loras(ours_model, args.passages)
    base = weights_of(ours_model)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])

    ours_times, merged_logits = [], None
    for _ in range(args.repeats):
        merge = merged_lora(ours_model, loras)
        start = time.perf_counter()
        merge.__enter__()
        elapsed = time.perf_counter() - start
        with torch.no_grad():
            merged_logits = ours_model(ids).logits
        start = time.perf_counter()
        merge.__exit__(None, None, None)
        ours_times.append(elapsed + time.perf_counter() - start)
    ours_restored = weights_of(ours_model)

    config = LoraConfig(r=2, lora_alpha=32, target_modules=TARGETS, lora_dropout=0.0, init_lora_weights=False)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(path).eval(), config, adapter_name="p0")
    peft_times, peft_logits = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        names = []
        for index, lora in enumerate(loras):
            name = f"p{index}"
            if name not in peft_model.peft_config:
                peft_model.add_adapter(name, config)
            set_peft_model_state_dict(peft_model, peft_state(lora), adapter_name=name)
            names.append(name)
        peft_model.add_weighted_adapter(names, [1.0] * len(names), "merged", combination_type="cat")
        peft_model.set_adapter("merged")
        peft_model.merge_adapter()
        elapsed = time.perf_counter() - start
        with torch.no_grad():
            peft_logits = peft_model(ids).logits
        start = time.perf_counter()
        peft_model.unmerge_adapter()
        peft_model.delete_adapter("merged")
        peft_times.append(elapsed + time.perf_counter() - start)
    peft_restored = {name.removeprefix("base_model.model."): w for name, w in
                     weights_of(peft_model.get_base_model()).items()}

    ours, reference = statistics.median(ours_times), statistics.median(peft_times)
    table = Table(title=f"Merging {args.passages} passage LoRAs into {args.model}, then restoring (median of "
                        f"{args.repeats})")
    for column in ("implementation", "s/question", "max |W_restored - W_base|"):
        table.add_column(column)
    table.add_row("retbench merged_lora", f"{ours:.4f}",
                  f"{max(float((ours_restored[n] - base[n]).abs().max()) for n in base):.2e}")
    table.add_row("peft cat adapter + merge/unmerge", f"{reference:.4f}",
                  f"{max(float((peft_restored[n] - base[n]).abs().max()) for n in base):.2e}")
    Console().print(table)
    print(f"ratio peft / retbench: {reference / ours:.2f}x; merged outputs agree: "
          f"{torch.allclose(merged_logits, peft_logits, atol=1e-3)} "
          f"(max |diff| {float((merged_logits - peft_logits).abs().max()):.2e})")


if __name__ == "__main__":
    main()
