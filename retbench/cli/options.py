"""The options shared by ``retbench run``, ``grid`` and ``train``, and turning them into a
RunConfig's keyword arguments (merged with ``--config run.toml``; flags win)."""

from __future__ import annotations

from typing import Any

import click

from retbench.engine.config import ARG_KINDS
from retbench.errors import ConfigError

OVERWRITE = click.Choice(["always", "never", "only-missing"])


def run_options(func: Any, *, lists: bool = False) -> Any:
    """The options of run / grid / train; with ``lists`` (grid) --k takes a comma list."""
    options = [
        click.option("--retriever", help="Retriever name (`retbench list`)."),
        click.option("--reader", help="Reader name."),
        click.option("--injector", help="Injector name (default: the reader's, else in-context)."),
        click.option("--dataset", help="Dataset name, or name:LOCATION such as beir:/path/to/folder."),
        click.option("--split", default=None, help="Split to evaluate [default: the dataset's, usually test]."),
        click.option("--k", type=str if lists else int, default=None,
                     help="Documents retrieved per query [default: 100]."),
        click.option("--read-k", type=int, default=None, help="Passages given to the reader per query."),
        click.option("--limit", type=int, default=None, help="Only the first N queries (file order)."),
        click.option("--sample", type=int, default=None, help="N queries drawn with --seed."),
        click.option("--per-type", type=int, default=None, help="The first N queries of each question type."),
        click.option("--metric", "metrics", multiple=True, help="Metric (ir-measures string or registered name)."),
        click.option("--data-dir", type=click.Path(), help="Folder holding datasets already on disk."),
        click.option("--seed", type=int, default=None),
        click.option("--fit-split", help="Train the retriever on this split before indexing."),
        click.option("--fit-only", help="Train only these components on --fit-split, comma-separated "
                                        "(retriever, reader, injector) [default: every trainable one]."),
        click.option("--shard-size", type=int, default=None, help="Queries per resumable shard [default: 500]."),
        click.option("--negatives", help="Negative sampler used for training."),
        click.option("--generator", help="Text generator a reader or an augmenter uses (default: the reader's, "
                                         "else hf)."),
        click.option("--reranker", help="Reranker that re-scores each query's top --rerank-k candidates "
                                        "(e.g. cross-encoder)."),
        click.option("--rerank-k", type=int, default=None, help="Candidates per query the reranker re-scores "
                                                                "[default: 100]."),
        click.option("--augment", help="Augmenters whose synthetic training data joins --fit-split, "
                                       "comma-separated (e.g. crop,qgen,rerank)."),
        click.option("--augment-generator", help="Generator that writes training data (augmenters, SyNeg, PRAG's QA "
                                                 "pairs) [default: --generator]."),
        click.option("--augment-ratio", type=float, default=None,
                     help="Synthetic training items per original item [default: all of them]."),
        *(click.option(f"--{kind.replace('_', '-')}-arg", f"{kind}_args", multiple=True, metavar="KEY=VALUE",
                       help=f"{kind.replace('_', ' ')} parameter; repeatable.")
          for kind in ARG_KINDS),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML run configuration."),
        click.option("--overwrite", type=OVERWRITE, default="only-missing", show_default=True),
        click.option("--save-record", type=click.Path(file_okay=False), help="Also save the record under DIR/<dataset>/."),
        click.option("--quiet", is_flag=True, help="Print nothing but errors."),
        click.option("--json", "as_json", is_flag=True, help="Print the record(s) as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def config_values(params: dict[str, Any]) -> dict[str, Any]:
    """Merge ``--config`` file values with flags (flags win) into RunConfig keyword arguments."""
    from retbench.component import parse_assignments
    from retbench.engine.config import load_toml

    values = load_toml(params["config_file"]) if params.get("config_file") else {}
    if values:
        from retbench.engine.config import RunConfig
        from retbench.engine.typecheck import check_config_file

        check_config_file(RunConfig, values, path=params["config_file"])
    for key in ("retriever", "reader", "injector", "dataset", "split", "k", "read_k", "limit", "sample", "per_type",
                "data_dir",
                "seed", "fit_split", "fit_only", "negatives", "generator", "augment", "augment_generator", "augment_ratio",
                "shard_size", "reranker", "rerank_k"):
        if params.get(key) is not None:
            values[key] = params[key]
    if params.get("metrics"):
        from retbench.metrics.scoring import split_metric_list

        values["metrics"] = [name for item in params["metrics"] for name in split_metric_list(item)]
    for kind in ARG_KINDS:
        flag_args = parse_assignments(params.get(f"{kind}_args", ()), option=f"--{kind.replace('_', '-')}-arg")
        values[f"{kind}_args"] = {**values.get(f"{kind}_args", {}), **flag_args}
    if not values.get("dataset"):
        raise ConfigError("missing --dataset (for example --dataset sample)")
    return values
