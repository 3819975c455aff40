"""Cost measurements: wall time per stage, throughput, peak memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class StageTimer:
    """Exclusive wall-clock seconds per named stage: time spent in a nested stage (an index
    built lazily inside the search stage) counts for the inner stage only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[str] = []
        self._since = 0.0

    def _flush(self) -> None:
        now = time.perf_counter()
        if self._stack:
            top = self._stack[-1]
            self.seconds[top] = self.seconds.get(top, 0.0) + now - self._since
        self._since = now

    def elapsed(self, stage: str) -> float:
        """Seconds counted so far for ``stage``, including a still-running interval."""
        self._flush()
        return self.seconds.get(stage, 0.0)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        self._flush()
        self._stack.append(stage)
        try:
            yield
        finally:
            self._flush()
            self._stack.pop()


def injection_cost_summary(costs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Summarise the ``Injection.cost`` of every question: mean online seconds per question
    for each step, and per-passage artefacts counted once each (a passage retrieved for
    several questions is prepared once)."""
    if not costs:
        return {}
    steps: dict[str, float] = {}
    artefacts: dict[str, dict[str, float]] = {}
    for cost in costs.values():
        for step, seconds in cost.get("online_seconds", {}).items():
            steps[step] = steps.get(step, 0.0) + seconds
        artefacts.update(cost.get("artefacts", {}))
    summary: dict[str, Any] = {"injection_online_seconds": {s: round(v / len(costs), 4) for s, v in steps.items()}}
    if artefacts:
        summary["injection_artefacts"] = {
            "passages": len(artefacts),
            "offline_seconds_per_passage": round(
                sum(a.get("offline_seconds", 0.0) for a in artefacts.values()) / len(artefacts), 4),
            "bytes": int(sum(a.get("bytes", 0) for a in artefacts.values())),
        }
    return summary
