"""The site's figures as inline SVG, drawn with matplotlib (the ``site`` extra).

Only :mod:`retbench.reporting.site` imports this module, so ``import retbench`` and ``retbench list``
never load matplotlib. Figures are built on ``matplotlib.figure.Figure`` (no pyplot, no global
state) and saved with a fixed hash salt and no date, so the same records give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

STYLE = {
    "svg.fonttype": "none",  # text stays text: selectable, searchable, smaller
    "svg.hashsalt": "retbench",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


def colour(row: int) -> str:
    """One colour per leaderboard row, the same in every figure of a page."""
    return PALETTE[row % len(PALETTE)]


@dataclass
class Series:
    """Values of one or more rows that are drawn as one (identical results share a bar or line):
    a curve's values per step, or bars' values per panel and query type."""

    rows: list[int]
    label: str
    values: Any


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight",
                   metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _grid(count: int, width: float, height: float) -> tuple[Figure, int, int]:
    columns = min(count, 2)
    rows = math.ceil(count / columns)
    return Figure(figsize=(width * columns, height * rows + 0.5), layout="constrained"), rows, columns


def _legend(figure: Figure) -> None:
    """One legend under the panels, each label once."""
    handles: dict[str, Any] = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=2, fontsize=7,
                      frameon=False)


def _scale(axes: Any, values: Sequence[float]) -> None:
    positive = [v for v in values if v > 0]
    if not positive:
        return
    if max(positive) / min(positive) <= 20:
        return
    if len(positive) < len(values):  # zeros (an untrained row, nothing stored) stay on the axis
        axes.set_xscale("symlog", linthresh=min(positive))
    else:
        axes.set_xscale("log")


def quality_cost(panels: Sequence[tuple[str, list[tuple[int, float, float]], list[int]]], metric: str) -> str:
    """One panel per cost axis: ``(axis label, [(row, cost, quality)], Pareto-front rows)``."""
    with rc_context(STYLE):
        figure = Figure(figsize=(3.6 * len(panels), 3.4), layout="constrained")
        for n, (label, points, front) in enumerate(panels):
            axes = figure.add_subplot(1, len(panels), n + 1)
            costs = [cost for _, cost, _ in points]
            _scale(axes, costs)
            on_front = sorted((cost, quality) for row, cost, quality in points if row in front)
            if on_front:
                xs, ys = [c for c, _ in on_front], [q for _, q in on_front]
                axes.step(xs + [max(costs)], ys + ys[-1:], where="post", color="#444", lw=1, zorder=1,
                          label="Pareto front (ringed rows)")
            for row, cost, quality in points:
                axes.scatter([cost], [quality], s=46 if row in front else 22, color=colour(row), zorder=2,
                             edgecolors="black" if row in front else "none", linewidths=0.9)
                axes.annotate(f"#{row + 1}", (cost, quality), textcoords="offset points", xytext=(4, 3),
                              fontsize=7)
            axes.set_xlabel(f"{label} (lower is better)")
            if n == 0:
                axes.set_ylabel(metric)
        _legend(figure)
        return _svg(figure)


def per_type_bars(panels: Sequence[tuple[str, Sequence[str]]], series: Sequence[Series]) -> str:
    """One panel per metric ``(metric, query types)``, grouped bars: one group per type, one bar
    per series (``series.values[metric]`` aligned with the types)."""
    with rc_context(STYLE):
        figure, rows, columns = _grid(len(panels), 4.2, 2.7)
        width = 0.8 / max(len(series), 1)
        for n, (metric, types) in enumerate(panels):
            axes = figure.add_subplot(rows, columns, n + 1)
            positions = np.arange(len(types))
            for m, item in enumerate(series):
                axes.bar(positions + (m - (len(series) - 1) / 2) * width, item.values[metric], width,
                         color=colour(item.rows[0]), label=item.label)
            long = max((len(t) for t in types), default=0) * len(types) > 40
            axes.set_xticks(positions, list(types), rotation=20 if long else 0, ha="right" if long else "center")
            axes.set_ylabel(metric)
            axes.grid(axis="x", visible=False)
        _legend(figure)
        return _svg(figure)


def _smooth(values: Sequence[float]) -> np.ndarray:
    window = max(1, len(values) // 15)
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def curves(title: str, panels: Sequence[tuple[str, Sequence[Series]]]) -> str:
    """Training curves, one panel per quantity (loss, lm, mse, ...): each step faint, a running
    mean over a fifteenth of the steps on top."""
    with rc_context(STYLE):
        figure, rows, columns = _grid(len(panels), 4.2, 2.7)
        figure.suptitle(title, fontsize=10)
        for n, (name, series) in enumerate(panels):
            axes = figure.add_subplot(rows, columns, n + 1)
            for item in series:
                steps = np.arange(1, len(item.values) + 1)
                axes.plot(steps, item.values, color=colour(item.rows[0]), alpha=0.25, lw=0.8)
                axes.plot(steps, _smooth(item.values), color=colour(item.rows[0]), lw=1.6, label=item.label)
            axes.set_title(name, fontsize=9)
            axes.set_xlabel("step")
        _legend(figure)
        return _svg(figure)
