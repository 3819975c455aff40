"""The static leaderboard site: ``index.html`` and one page per dataset.

Each page holds the dataset's tables (sortable by any column with a small inline script), a
quality-against-cost scatter with its Pareto front, per-type bar charts and the training curves
found in the records' ``training`` sections. Nothing is fetched at view time: the figures are
inline SVG (:mod:`retbench.reporting.plots`, matplotlib), the script and style are in the page, and a
Content-Security-Policy forbids every other source. The HTML is written by hand (a few
``html.escape`` d templates); no templating library is worth a dependency for it.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from retbench.engine.cache import atomic_write_text
from retbench.engine.names import FIT_STAGES
from retbench.errors import ConfigError
from retbench.reporting.leaderboard import PER_TYPE, SHARED_NOTE, Board, Column, Table, cost_value, system_label
from retbench.data.types import RunRecord

POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 0 1.5rem 3rem;
       color: #1b1b1b; }
nav { padding: .8rem 0; border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
nav a { margin-right: 1rem; }
h1 { margin: .3rem 0 1rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: .2rem .4rem; font-size: 13px; text-align: right; white-space: nowrap; }
th { background: #f4f6f8; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort=ascending]::after { content: " ▲"; } th[aria-sort=descending]::after { content: " ▼"; }
td.text, th.text { text-align: left; }
tbody tr:nth-child(even) { background: #fafafa; } tbody tr:hover { background: #eef4ff; }
ul.notes { color: #444; font-size: 13px; }
figure.plot { margin: 1rem 0; } figure.plot svg { max-width: 100%; height: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start; }
figcaption { color: #555; font-size: 13px; }
ol.runs code { white-space: pre-wrap; word-break: break-all; }
ol.runs li { margin: .4rem 0; } pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; }
"""
SORT_SCRIPT = """
(function () {
  function key(row, col, numeric) {
    var cell = row.cells[col];
    var raw = cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : cell.textContent.trim();
    if (raw === '') return null;
    return numeric ? parseFloat(raw) : raw.toLowerCase();
  }
  function sort(table, th) {
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute('data-type') === 'number';
    var first = (!numeric || th.getAttribute('data-better') === 'lower') ? 'ascending' : 'descending';
    var now = th.getAttribute('aria-sort');
    var dir = now ? (now === 'ascending' ? 'descending' : 'ascending') : first;
    table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col, numeric), y = key(b, col, numeric);
      if (x === null || y === null) return (x === null) - (y === null);  /* blanks last */
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return dir === 'ascending' ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll('table.sortable thead th').forEach(function (th) {
    th.tabIndex = 0;
    th.title = 'sort by this column';
    th.addEventListener('click', function () { sort(th.closest('table'), th); });
    th.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); sort(th.closest('table'), th); }
    });
  });
})();
"""


def page_name(dataset: str) -> str:
    """A file name that is also a safe relative link (``miracl:sw`` -> ``miracl-sw.html``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", dataset).strip("-") + ".html"


def pareto_front(points: list[tuple[int, float, float]]) -> list[int]:
    """The rows of ``(row, cost, quality)`` points that no other point beats on both lower cost
    and higher quality, cheapest first."""
    front, best = [], -math.inf
    for row, _, quality in sorted(points, key=lambda p: (p[1], -p[2], p[0])):
        if quality > best:
            front.append(row)
            best = quality
    return front


def _trained(record: RunRecord) -> bool:
    stages = set(record.training) | set(record.cost.get("stage_seconds", {}))
    return any(stage in FIT_STAGES for stage in stages)


def _storage_mb(record: RunRecord) -> float | None:
    """What a system keeps on disk to answer: its index plus injected artefacts (LoRAs, a
    translator); a closed-book reader keeps nothing beyond its model."""
    index = record.cost.get("index_bytes") if record.config.get("retriever") else 0
    if index is None:
        return None
    return (index + (record.cost.get("storage_bytes") or 0)) / 1e6


def _train_seconds(record: RunRecord) -> float | None:
    seconds = cost_value(record, "train_seconds")
    return 0.0 if seconds is None and not _trained(record) else seconds


def _seconds_per_query(record: RunRecord) -> float | None:
    rate = record.cost.get("queries_per_second")
    return 1 / rate if rate else None


def cost_axes(board: Board) -> list[tuple[str, Callable[[RunRecord], float | None]]]:
    """The scatter's cost axes: seconds per question (per query for retrieval alone), storage
    MB, train seconds."""
    if board.has_answers:
        seconds = ("seconds per question", lambda r: r.cost.get("seconds_per_question"))
    else:
        seconds = ("search seconds per query", _seconds_per_query)
    return [seconds, ("storage MB (index + injected)", _storage_mb), ("train seconds", _train_seconds)]


def quality_cost_panels(board: Board) -> list[tuple[str, list[tuple[int, float, float]], list[int]]]:
    panels = []
    for label, measure in cost_axes(board):
        points = []
        for row, record in enumerate(board.records):
            quality, cost = record.metrics.get(board.primary), measure(record)
            if quality is not None and cost is not None:
                points.append((row, float(cost), float(quality)))
        if any(cost > 0 for _, cost, _ in points):
            panels.append((label, points, pareto_front(points)))
    return panels


def _series_label(board: Board, rows: list[int]) -> str:
    label = board.labels[rows[0]]
    label = label if len(label) <= 48 else label[:47] + "…"
    numbers = ", ".join(f"#{n + 1}" for n in rows)
    return f"{numbers} {label}" if len(rows) == 1 else f"{numbers} (same values)"


def _grouped(board: Board, values: Mapping[int, tuple[Any, ...]]) -> list[tuple[list[int], tuple[Any, ...]]]:
    """Rows with identical values drawn once, in row order."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row, value in values.items():
        groups.setdefault(value, []).append(row)
    return sorted(((rows, value) for value, rows in groups.items()), key=lambda g: g[0][0])


def per_type_charts(board: Board) -> list[tuple[str, list[tuple[str, list[str]]], list[Any]]]:
    """Per-type results as ``(title, [(metric, types)], series)``: one chart for the answer
    metrics, one for retrieval; rows with the same values in every panel drawn once."""
    from retbench.reporting.plots import Series

    charts = []
    for title, metrics in (("answers", board.answer_metrics), ("retrieval", board.retrieval_metrics)):
        names = {m: board.per_type[m] for m in metrics if m in board.per_type}
        if not names:
            continue
        values = {row: tuple(round(r.metrics.get(n, math.nan), 6) for m in names for n in names[m])
                  for row, r in enumerate(board.records) if any(n in r.metrics for m in names for n in names[m])}
        series = []
        for rows, _ in _grouped(board, values):
            record = board.records[rows[0]]
            series.append(Series(rows, _series_label(board, rows),
                                 {m: [record.metrics.get(n, math.nan) for n in names[m]] for m in names}))
        panels = [(m, [PER_TYPE.match(n)["type"] for n in names[m]]) for m in names]
        charts.append((title, panels, series))
    return charts


def _is_curve(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 1 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def training_curves(report: Mapping[str, Any], path: tuple[str, ...] = ()) -> dict[str, list[float]]:
    """The curves in a training report: ``loss_curve`` and other ``*_curve`` lists, and the
    lists under a ``curves`` mapping, by name (``loss``, ``lm``, ``mse`` ...)."""
    found: dict[str, list[float]] = {}
    for key, value in report.items():
        if isinstance(value, Mapping):
            found.update(training_curves(value, (*path, key)))
        elif _is_curve(value) and (key.endswith("curve") or path[-1:] == ("curves",)):
            name = key.removesuffix("curve").removesuffix("_") or "loss"
            found[".".join([*(p for p in path if p != "curves"), name])] = [float(v) for v in value]
    return found


def training_figures(board: Board) -> list[tuple[str, list[tuple[str, list[Any]]]]]:
    from retbench.reporting.plots import Series

    stages: dict[str, dict[int, dict[str, list[float]]]] = {}
    for row, record in enumerate(board.records):
        for stage, report in record.training.items():
            if isinstance(report, Mapping) and (found := training_curves(report)):
                stages.setdefault(stage, {})[row] = found
    figures = []
    for stage, by_row in stages.items():
        groups = _grouped(board, {row: (json.dumps(found, sort_keys=True),) for row, found in by_row.items()})
        names = list(dict.fromkeys(name for found in by_row.values() for name in found))
        panels = [(name, [Series(rows, _series_label(board, rows), by_row[rows[0]][name])
                          for rows, _ in groups if name in by_row[rows[0]]]) for name in names]
        role = FIT_STAGES.get(stage)
        components = sorted({(board.records[row].components.get(role) or {}).get("name", "?")
                             for row in by_row}) if role else []
        title = f"{stage}: {', '.join(components)} ({role} training)" if role else stage
        figures.append((title, panels))
    return figures


def _cell(board: Board, row: int, column: Column) -> str:
    value = board.value(row, column)
    sort = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    text = html.escape(board.text(row, column))
    if column.key == "system":
        full = html.escape(system_label(board.records[row]))
        link = f'<a href="#run-{row + 1}" title="{full}">{text}</a>'
        return f'<td class="text" data-sort="{html.escape(sort)}">{link}</td>'
    kind = ' class="text"' if column.key in ("system", "split") else ""
    return f'<td{kind} data-sort="{html.escape(sort)}">{text}</td>'


def _table(board: Board, table: Table, number: int) -> str:
    heads = []
    for column in table.columns:
        numeric = column.key not in ("system", "split")
        better = "lower" if column.key == "#" or column.higher is False else "higher"
        kind = "number" if numeric else "text"
        css = "" if numeric else ' class="text"'
        heads.append(f'<th{css} data-type="{kind}" data-better="{better}" data-key="{html.escape(column.key)}">'
                     f"{html.escape(column.label)}</th>")
    body = "\n".join(f'<tr data-row="{n + 1}">' + "".join(_cell(board, n, c) for c in table.columns) + "</tr>"
                     for n in table.rows)
    return (f'<div class="scroll"><table class="sortable" id="table-{number}">\n<thead><tr>{"".join(heads)}'
            f"</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>")


def _figure(svg: str, kind: str, caption: str) -> str:
    return f'<figure class="plot" data-plot="{kind}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _page(title: str, nav: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n<nav>{nav}</nav>\n"
            f"{body}\n<script>{SORT_SCRIPT}</script>\n</body></html>\n")


def _nav(boards: Mapping[str, Board]) -> str:
    links = "".join(f'<a href="{page_name(name)}">{html.escape(name)}</a>' for name in boards)
    return f'<a href="index.html"><b>retbench leaderboards</b></a>{links}'


def _notes(board: Board) -> str:
    items = []
    for note in board.notes:
        shared = "".join(f"<li>{html.escape(s)}</li>" for s in board.shared) if note == SHARED_NOTE else ""
        items.append(f"<li>{html.escape(note)}" + (f"<ul>{shared}</ul>" if shared else "") + "</li>")
    return '<ul class="notes">' + "".join(items) + "</ul>"


def dataset_page(board: Board, nav: str) -> str:
    from retbench.reporting import plots

    main, *rest = board.tables
    parts = [f"<h1>{html.escape(board.dataset)}</h1>", _table(board, main, 0),
             _notes(board)]
    panels = quality_cost_panels(board)
    if panels:
        parts += ["<h2>Quality against cost</h2>", _figure(
            plots.quality_cost(panels, board.primary), "quality-cost",
            f"{board.primary} of each row (#) against its cost; the line is the Pareto front (no row is both "
            f"cheaper and better than a ringed one). Rows without {board.primary} or a cost measure are left out.")]
    charts = per_type_charts(board)
    if charts:
        parts += ["<h2>By query type</h2>", '<div class="plots">']
        parts += [_figure(plots.per_type_bars(panels, series), "per-type",
                          f"{title}: {', '.join(m for m, _ in panels)} by query type")
                  for title, panels, series in charts]
        parts.append("</div>")
    figures = training_figures(board)
    if figures:
        parts += ["<h2>Training curves</h2>", '<div class="plots">']
        parts += [_figure(plots.curves(title, panels), "training", f"{title}: per step (faint) and running mean")
                  for title, panels in figures]
        parts.append("</div>")
    for number, table in enumerate(rest, start=1):
        parts += [f"<h2>{html.escape(table.title)}</h2>", _table(board, table, number)]
    runs = []
    for n, record in enumerate(board.records):
        config = json.dumps({"config": record.config, "components": record.components}, indent=1,
                            sort_keys=True, default=str)
        runs.append(f'<li id="run-{n + 1}" value="{n + 1}"><code>{html.escape(record.command)}</code>'
                    f"<details><summary>{html.escape(system_label(record))}: configuration</summary>"
                    f"<pre>{html.escape(config)}</pre></details></li>")
    parts += ["<h2>Reproduce</h2>", '<ol class="runs">' + "".join(runs) + "</ol>"]
    return _page(f"{board.dataset} · retbench", nav, "\n".join(parts))


def index_page(boards: Mapping[str, Board], nav: str) -> str:
    rows = []
    for name, board in boards.items():
        score = board.records[0].metrics.get(board.primary) if board.records else None  # rows are sorted
        cells = [
            f'<td class="text" data-sort="{html.escape(name)}">'
            f'<a href="{page_name(name)}">{html.escape(name)}</a></td>',
            f'<td data-sort="{len(board.records)}">{len(board.records)}</td>',
            f'<td class="text">{html.escape(board.primary or "")}</td>',
            f'<td class="text">{"" if score is None else html.escape(board.labels[0])}</td>',
            f'<td data-sort="{"" if score is None else score}">{"" if score is None else f"{score:.4f}"}</td>',
        ]
        rows.append(f'<tr data-row="{name}">' + "".join(cells) + "</tr>")
    heads = "".join(f'<th class="{css}" data-type="{kind}" data-better="higher">{label}</th>' for label, kind, css in
                    [("dataset", "text", "text"), ("rows", "number", ""), ("sorted by", "text", "text"),
                     ("best row", "text", "text"), ("best score", "number", "")])
    table = (f'<div class="scroll"><table class="sortable" id="table-0"><thead><tr>{heads}</tr></thead><tbody>'
             + "\n".join(rows) + "</tbody></table></div>")
    body = ("<h1>retbench leaderboards</h1><p>One page per dataset: sortable tables, quality against cost, "
            "per-type results and training curves, generated from the RunRecords by "
            "<code>retbench leaderboard build --html</code>.</p>" + table)
    return _page("retbench leaderboards", nav, body)


def write_site(boards: Mapping[str, Board], folder: Path) -> Path:
    """Write ``index.html`` and one page per dataset into ``folder``; returns the index."""
    try:
        import matplotlib  # noqa: F401 - only to give a clear message
    except ImportError:
        raise ConfigError("the HTML site needs matplotlib: pip install 'retbench[site]'") from None
    nav = _nav(boards)
    pages = {page_name(name): dataset_page(board, nav) for name, board in boards.items()}
    pages["index.html"] = index_page(boards, nav)
    for name, text in pages.items():
        atomic_write_text(folder / name, text)
        (folder / name).chmod(0o644)  # a site to be served or opened by others
    return folder / "index.html"
