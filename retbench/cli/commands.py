"""The ``retbench`` command line: a thin click layer over the library."""

from __future__ import annotations

import itertools
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from retbench.cli import output as out
from retbench.cli.options import config_values, run_options
from retbench.errors import ConfigError, RetbenchError


@dataclass
class State:
    plugins_dir: str | None = None
    block: tuple[str, ...] = ()
    cache_dir: str | None = None
    _pm: Any = None
    commands: dict[str, click.Command] | None = None
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def pm(self) -> Any:
        if self._pm is None:
            from retbench.host.manager import get_plugin_manager

            self._pm = get_plugin_manager(block=self.block, plugins_dir=self.plugins_dir)
        return self._pm

    def cache(self, overwrite: str = "only-missing") -> Any:
        from retbench.engine.cache import Cache

        return Cache(self.cache_dir, overwrite=overwrite)

    def registries(self) -> Any:
        from retbench.host.registry import collect_registries

        registries = collect_registries(self.pm)
        for name, why in {**self.pm.load_failures, **registries.failures}.items():
            out.stderr.print(f"[yellow]warning: plugin '{name}' failed to load: {why}[/yellow]")
        return registries


def _state(ctx: click.Context) -> State:
    """The group's State, built from its options (sub-commands resolve before the callback)."""
    if not isinstance(ctx.obj, State):
        ctx.obj = State(plugins_dir=ctx.params.get("plugins_dir"), block=ctx.params.get("block_plugin") or (),
                        cache_dir=ctx.params.get("cache_dir"))
    return ctx.obj


class PluginGroup(click.Group):
    """Adds the commands plugins register through ``retbench_register_commands``."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        state = _state(ctx)
        if state.commands is None:
            scratch = click.Group()
            for impl in state.pm.hook.retbench_register_commands.get_hookimpls():
                try:
                    impl.function(cli=scratch)
                except Exception as exc:  # noqa: BLE001 - one plugin must not break the CLI
                    state.failures[impl.plugin_name] = str(exc)
            state.commands = {n: c for n, c in scratch.commands.items() if n not in self.commands}
        return state.commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)


@click.group(cls=PluginGroup)
@click.option("--plugins-dir", type=click.Path(file_okay=False), help="Also load every *.py plugin in this folder.")
@click.option("--block-plugin", multiple=True, help="Do not load this plugin (entry-point name); repeatable.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache folder (default $RETBENCH_HOME).")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="retbench")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None, block_plugin: tuple[str, ...], cache_dir: str | None,
        debug: bool) -> None:
    """Benchmark retrievers and readers on retrieval and RAG datasets."""
    _state(ctx)


def _evaluate_all(state: State, configs: list[Any], params: dict[str, Any], workers: Any = None) -> None:
    from retbench.engine.evaluate import evaluate

    cache = state.cache(params["overwrite"])
    state.registries()
    records = []
    with out.progress_reporting(not (params["quiet"] or params["as_json"])):
        for config in configs:
            records.append(evaluate(config, pm=state.pm, cache=cache, records_dir=params["save_record"],
                                    workers=workers))
    out.report_runs(records, quiet=params["quiet"], as_json=params["as_json"])


@cli.command()
@run_options
@click.option("--workers", type=int, default=None,
              help="Ray actors computing the generation-bound work (answer and rerank shards, training-data "
                   "generation); a smaller --shard-size spreads it.")
@click.option("--ray-address", help="With --workers: join this Ray cluster (default: a local one on 127.0.0.1).")
@click.option("--worker-resources", help="With --workers: Ray resources per actor, e.g. cpu=1,gpu=0 (default "
                                         "cpu=1; cpu also sets its threads).")
@click.pass_obj
def run(state: State, workers: int | None, ray_address: str | None, worker_resources: str | None,
        **params: Any) -> None:
    """Run one retriever and/or reader on one dataset and score it."""
    from retbench.engine.config import RunConfig

    plan = None
    if workers is not None:
        from retbench.engine.executors import PluginSource, parse_resources
        from retbench.engine.workers import WorkerPlan

        plan = WorkerPlan(workers, ray_address, parse_resources(worker_resources or "cpu=1", option="--worker-resources"),
                          PluginSource(state.plugins_dir, tuple(state.block)))
    elif ray_address or worker_resources:
        raise ConfigError("--ray-address and --worker-resources need --workers")
    _evaluate_all(state, [RunConfig(**config_values(params))], params, workers=plan)


@cli.command()
@lambda func: run_options(func, lists=True)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run the cells one after another here, or as Ray tasks on a cluster.")
@click.option("--ray-address", help="Join this Ray cluster (default: start a local one on 127.0.0.1).")
@click.option("--cell-resources", help="Ray resources per cell, e.g. cpu=1,gpu=0 (default cpu=1).")
@click.pass_obj
def grid(state: State, executor: str, ray_address: str | None, cell_resources: str | None, **params: Any) -> None:
    """Run the cross product of comma-separated --retriever, --reader, --injector, --dataset, --k.

    A failing cell is reported and the others still run; a re-run skips finished cells and
    stages (they share the stage cache)."""
    from retbench.engine.config import RunConfig
    from retbench.engine.executors import GridJob, PluginSource, parse_resources, run_grid

    base = config_values(params)
    axes = {key: str(base[key]).split(",") if base.get(key) is not None else [None]
            for key in ("retriever", "reader", "injector", "dataset", "k")}
    varied = [key for key, values in axes.items() if len(values) > 1]
    configs, labels = [], []
    for combo in itertools.product(*axes.values()):
        values = {**base, **{k: v for k, v in zip(axes, combo) if v is not None}}
        if values.get("k") is not None:
            values["k"] = int(values["k"])
        configs.append(RunConfig(**values))
        labels.append(" ".join(f"{k}={values.get(k)}" for k in varied) or "1")
    state.registries()
    cache = state.cache(params["overwrite"])
    job = GridJob(configs, PluginSource(state.plugins_dir, tuple(state.block)), cache.home,
                  overwrite=params["overwrite"], records_dir=params["save_record"], labels=labels)
    with out.progress_reporting(not (params["quiet"] or params["as_json"])):
        outcomes = run_grid(job, executor=executor, pm=state.pm, address=ray_address,
                            resources=parse_resources(cell_resources) if cell_resources else None)
    records = [o.record for o in outcomes if o.record is not None]
    if records:
        out.report_runs(records, quiet=params["quiet"], as_json=params["as_json"], json_list=True)
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        out.print_error(f"cell {labels[outcome.index]}: {outcome.error}")
    if failed:
        raise RetbenchError(f"{len(failed)} of {len(outcomes)} grid cells failed; the others' records are kept")


@cli.command()
@run_options
@click.pass_obj
def train(state: State, **params: Any) -> None:
    """Train the retriever and/or reader (--fit-split, default train) and cache the models."""
    from retbench.engine.config import RunConfig
    from retbench.engine.evaluate import train_only

    values = config_values(params)
    values.setdefault("fit_split", "train")
    with out.progress_reporting(not (params["quiet"] or params["as_json"])):
        result = train_only(RunConfig(**values), pm=state.pm, cache=state.cache(params["overwrite"]))
    if params["as_json"]:
        out.print_json(result)
    elif not params["quiet"]:
        for name, info in result.items():
            out.stdout.print(f"{name}: {'cached' if info['cached'] else 'trained'} -> {info['workdir']}")


@cli.command("list")
@click.option("--hook", help="Only plugins implementing this hook.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_plugins(state: State, hook: str | None, as_json: bool) -> None:
    """List plugins, their distributions and versions, and what each registers."""
    from retbench.host.listing import plugin_rows

    rows = plugin_rows(state.pm, state.registries(), hook=hook)
    if as_json:
        out.print_json(rows)
    else:
        out.stdout.print(out.plugins_table(rows))


@cli.group()
def leaderboard() -> None:
    """Build and check Markdown leaderboards (and a static site) from RunRecords."""


def _leaderboard_inputs(state: State, records: str, expected: str) -> tuple[Any, Any, set[str]]:
    """The records, ``expected.toml`` and the names of the installed answer metrics (EM, F1, ...)."""
    from retbench.reporting.leaderboard import load_expectations
    from retbench.reporting.records import load_records

    folder = Path(records)
    if not folder.is_dir():
        raise ConfigError(f"records folder not found: {folder}")
    expectations = load_expectations(Path(expected))
    answers = {e.name for e in state.registries().metrics if getattr(e.cls, "level", None) == "answer"}
    return load_records(folder), expectations, answers


@leaderboard.command("build")
@click.option("--records", default="leaderboards/records", show_default=True, type=click.Path())
@click.option("--out", "out_dir", default="leaderboards", show_default=True, type=click.Path())
@click.option("--expected", default="leaderboards/expected.toml", show_default=True, type=click.Path())
@click.option("--print", "show", is_flag=True, help="Also print the tables.")
@click.option("--html", "html_dir", type=click.Path(file_okay=False),
              help="Also write a static site here: index.html and one page per dataset, with plots.")
@click.pass_obj
def leaderboard_build(state: State, records: str, out_dir: str, expected: str, show: bool,
                      html_dir: str | None) -> None:
    """Write <out>/<dataset>.md for every dataset in the records (and the site with --html)."""
    from retbench.engine.cache import atomic_write_text
    from retbench.reporting.leaderboard import build_boards, render_markdown

    loaded, expectations, answers = _leaderboard_inputs(state, records, expected)
    boards = build_boards(loaded, expectations, answer_metrics=answers)
    for name, board in boards.items():
        text = render_markdown(board)
        atomic_write_text(Path(out_dir) / f"{name}.md", text)
        click.echo(text if show else f"wrote {Path(out_dir) / f'{name}.md'}")
    if html_dir:
        from retbench.reporting.site import write_site

        index = write_site(boards, Path(html_dir))
        click.echo(f"site: {index.resolve().as_uri()}")


@leaderboard.command("check")
@click.option("--records", default="leaderboards/records", show_default=True, type=click.Path())
@click.option("--out", "out_dir", default="leaderboards", show_default=True, type=click.Path())
@click.option("--expected", default="leaderboards/expected.toml", show_default=True, type=click.Path())
@click.pass_obj
def leaderboard_check(state: State, records: str, out_dir: str, expected: str) -> None:
    """Fail when a table is stale or a pinned score moved beyond its tolerance."""
    from retbench.reporting.leaderboard import check

    loaded, expectations, answers = _leaderboard_inputs(state, records, expected)
    problems = check(loaded, Path(out_dir), expectations, answer_metrics=answers)
    for problem in problems:
        out.stderr.print(f"[red]✗[/red] {problem}")
    if problems:
        raise RetbenchError(f"leaderboard check failed: {len(problems)} problem(s)")
    click.echo(f"leaderboards up to date; {len(expectations.pins)} pinned score(s) within tolerance")


@cli.group()
def datasets() -> None:
    """List and prepare datasets."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def datasets_list(state: State, as_json: bool) -> None:
    """Datasets known to the installed plugins."""
    from retbench.host.listing import dataset_rows

    rows = dataset_rows(state.registries(), workdir=state.cache().home / "prepared")
    if as_json:
        out.print_json(rows)
    else:
        out.stdout.print(out.datasets_table(rows))


@datasets.command("prepare")
@click.argument("name")
@click.option("--split", default=None, help="[default: the dataset's evaluation split]")
@click.option("--data-dir", type=click.Path())
@click.pass_obj
def datasets_prepare(state: State, name: str, split: str, data_dir: str | None) -> None:
    """Read and prepare a dataset split into the cache (corpus as Arrow)."""
    from retbench.engine.evaluate import prepare_dataset

    split_data = prepare_dataset(name, split=split, data_dir=data_dir, pm=state.pm, cache=state.cache())
    click.echo(f"{split_data.name}/{split_data.split}: {len(split_data.corpus)} documents, {len(split_data.queries)} "
               f"queries, revision {split_data.revision}")


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    from retbench.attribution import print_warnings_with

    print_warnings_with(lambda line: out.stderr.print(f"[yellow]warning: {line}[/yellow]", highlight=False))
    if debug:  # accepted anywhere on the line, not only before the sub-command
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        cli.main(args=args, prog_name="retbench", standalone_mode=False)
    except click.exceptions.Abort:
        out.stderr.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - one clear line, never a bare traceback
        if debug:
            traceback.print_exc()
        message = str(exc) if isinstance(exc, RetbenchError) else f"{type(exc).__name__}: {exc}"
        hint = "" if debug else " (--debug shows the traceback)"
        out.print_error(f"{message}{hint}")
        sys.exit(1)
