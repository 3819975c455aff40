"""The ``in-context`` injector: retrieved passages go into the reader's prompt as text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retbench.component import Component
from retbench.data.types import Injection, Passage


class InContext(Component):
    name = "in-context"
    version = "1"

    def __init__(self) -> None:
        pass

    def prepare(self, passages: Sequence[Passage], *, reader: Any, workdir: Path) -> Injection:
        return Injection(
            kind=self.name,
            passages=list(passages),
            nbytes=sum(len(p.contents().encode()) for p in passages),
        )
