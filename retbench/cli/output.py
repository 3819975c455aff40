"""What the CLI shows: progress bars, summary tables, the plugin listing (rich).

Table cells are ``Text`` objects, never markup: metric names such as ``EM [comparison]`` and
extras such as ``retbench-bm25[lucene]`` would otherwise be read as rich markup and vanish.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from retbench.progress import SilentReporter, reporting
from retbench.data.types import RunRecord

T = TypeVar("T")

stdout = Console()
stderr = Console(stderr=True)


class RichReporter:
    """Progress bars on stderr (one per running loop) and short status notes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def track(self, iterable: Iterable[T], *, description: str, total: int | None) -> Iterator[T]:
        task = self.progress.add_task(description, total=total)
        try:
            for item in iterable:
                yield item
                self.progress.advance(task)
        finally:
            self.progress.remove_task(task)

    def note(self, message: str) -> None:
        self.progress.console.print(f"[dim]{message}[/dim]")


class NotesReporter(SilentReporter):
    """No bars (stderr is not a terminal); status notes as plain lines."""

    def note(self, message: str) -> None:
        stderr.print(message, highlight=False)


@contextmanager
def progress_reporting(enabled: bool) -> Iterator[None]:
    if not enabled or not stderr.is_terminal:
        with reporting(NotesReporter() if enabled else SilentReporter()):
            yield
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar, reporting(RichReporter(bar)):
        yield


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def summary_table(records: list[RunRecord]) -> Table:
    """One column per run, one row per metric and cost figure (fits narrow terminals)."""
    table = Table(title="retbench results")
    table.add_column("")
    for r in records:
        system = " + ".join(str(r.config[k]) for k in ("retriever", "reader") if r.config.get(k))
        table.add_column(Text(f"{system}\n{r.dataset['name']}/{r.dataset['split']}"), justify="right")
    metrics = list(dict.fromkeys(m for r in records for m in r.metrics))
    rows: list[tuple[str, list[str]]] = [
        ("queries", [_fmt(r.dataset.get("evaluated_queries")) for r in records]),
        *((m, [_fmt(r.metrics.get(m)) for r in records]) for m in metrics),
        ("queries/s", [f"{r.cost['queries_per_second']:,.0f}" if r.cost.get("queries_per_second") else ""
                       for r in records]),
        ("seconds (this run)", [f"{sum(r.cost.get('run_seconds', {}).values()):.2f}" for r in records]),
        ("peak RSS MB", [f"{r.cost.get('peak_rss_mb', 0):.0f}" for r in records]),
        ("cache", ["hit (no work)" if r.cached else "computed" for r in records]),
    ]
    for label, values in rows:
        table.add_row(*(Text(cell) for cell in (label, *values)))
    return table


def report_runs(records: list[RunRecord], *, quiet: bool, as_json: bool, json_list: bool = False) -> None:
    """A summary table, or JSON: one record as an object (``run``), else (or with
    ``json_list``, as a grid does) a list."""
    if as_json:
        print_json([r.to_dict() for r in records] if json_list or len(records) != 1 else records[0].to_dict())
        return
    if quiet:
        return
    stdout.print(summary_table(records))
    for r in records:
        if r.cached:
            stdout.print(
                f"[green]Every stage of {r.dataset['name']} came from the cache: no work done "
                f"({', '.join(r.stages)}).[/green]"
            )
        else:
            done = [name for name, s in r.stages.items() if not s["cached"]]
            stdout.print(f"[dim]computed: {', '.join(done)}; record {r.run_id[:12]}[/dim]")


def plugins_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="retbench plugins")
    for column in ("plugin", "distribution", "version", "registers"):
        table.add_column(column)
    for row in rows:
        cells = (row["plugin"], row["distribution"], row["version"], "\n".join(row["registers"]))
        table.add_row(*(Text(cell) for cell in cells))
    return table


def print_error(message: str) -> None:
    """One line on stderr, whatever the message contains (no markup, no wrapping)."""
    line = " ".join(message.split())
    stderr.print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)


def datasets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="retbench datasets")
    for column in ("name", "cached", "licence", "description"):
        table.add_column(column)
    for row in rows:
        if row["cached_bytes"] is not None:
            cached = f"{row['cached_bytes'] / 1e6:,.1f} MB"
        else:
            cached = "download on use" if row["downloadable"] else "local files"
        table.add_row(*(Text(cell) for cell in (row["name"], cached, row["licence"], row["description"])))
    return table
