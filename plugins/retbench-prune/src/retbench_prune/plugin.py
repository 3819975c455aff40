"""Entry point ``retbench: prune``: the ``retbench prune`` command."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from retbench import hookimpl

SETTING_HELP = {
    "prune_steps": "Pruning steps (masks and model trained together).",
    "recover_steps": "Continued LM training steps of the pruned model (0: none).",
    "seq_len": "Tokens per training block.",
    "batch_size": "Blocks per pruning step.",
    "recover_batch_size": "Blocks per recovery step.",
    "micro_batch_size": "Blocks per forward pass (gradient accumulation).",
    "lr": "Model learning rate (both stages).",
    "mask_lr": "Learning rate of the masks and (as ascent) the Lagrange multipliers.",
    "lr_warmup": "Share of pruning steps warming the learning rate up.",
    "recover_lr_warmup": "Share of recovery steps warming the learning rate up.",
    "lagrangian_warmup": "Share of pruning steps over which the target sparsity rises from 0.",
    "min_lr_ratio": "Final learning rate as a share of the peak (cosine decay).",
    "max_grad_norm": "Gradient clipping norm.",
    "held_out_blocks": "Blocks held out for perplexity.",
    "checkpoint_every": "Steps between checkpoints (a killed run resumes from the last).",
    "seed": "Seed of the masks' noise, the batches and the held-out split.",
}


def _setting_options(command: Any) -> Any:
    from retbench_prune.recipe import PruneSettings

    for field in reversed(fields(PruneSettings)):
        kind = float if isinstance(field.default, float) else int
        command = click.option(f"--{field.name.replace('_', '-')}", field.name, type=kind, default=field.default,
                               show_default=True, help=SETTING_HELP[field.name])(command)
    return command


@hookimpl
def retbench_register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option("--model", required=True, help="Causal LM to prune: hub id, folder or offline package.")
    @click.option("--text", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="Text to prune and recover on: a .txt file (a document per line) or .jsonl with 'text' "
                       "(e.g. a BEIR corpus.jsonl).")
    @click.option("--layers", type=int, required=True, help="Target number of layers.")
    @click.option("--heads", type=int, required=True, help="Target attention heads per layer.")
    @click.option("--intermediate", type=int, required=True, help="Target FFN intermediate size.")
    @click.option("--hidden", type=int, required=True, help="Target hidden size.")
    @click.option("--init", type=click.Choice(["pruned", "random"]), default="pruned", show_default=True,
                  help="random: a freshly initialised model of the target shape, recovered the same way.")
    @click.option("--json", "as_json", is_flag=True, help="Print the model's metadata as JSON.")
    @_setting_options
    def prune(model: str, text: Path, layers: int, heads: int, intermediate: int, hidden: int, init: str,
              as_json: bool, **settings: Any) -> None:
        """Prune a causal LM to a target shape and recover it; prints the model folder."""
        from retbench_prune.recipe import PruneSettings, prune as run_prune, summary

        folder = run_prune(model, text, layers=layers, heads=heads, intermediate=intermediate, hidden=hidden,
                           settings=PruneSettings(**settings), init=init)
        if as_json:
            click.echo(json.dumps({"folder": str(folder), **summary(folder)}, indent=2))
            return
        info = summary(folder)
        ppl = info["perplexity"]
        click.echo(f"{folder}\n  parameters {info['source']['parameters']:,} -> {info['target']['parameters']:,}; "
                   "held-out perplexity " + ", ".join(f"{k} {v:.2f}" for k, v in ppl.items()))
