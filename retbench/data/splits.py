"""Split expressions: a split name, or a slice of its questions in file order as in HF datasets
(``test[:1000]``, ``test[1000:]``), checked so that a typo or an empty slice is an error, not
a run over zero questions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retbench.errors import ConfigError
from retbench.data.types import DatasetSplit

SPLIT_SLICE = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")


def parse_split(spec: str, *, option: str = "--split") -> tuple[str, slice | None]:
    """``(name, slice)`` of a split expression (``slice`` None for a whole split)."""
    if "[" not in spec and "]" not in spec:
        if not spec.strip():
            raise ConfigError(f"{option}: empty split name")
        return spec, None
    found = SPLIT_SLICE.match(spec)
    if not found:
        raise ConfigError(f"{option} '{spec}': expected NAME or NAME[START:STOP] with whole numbers, "
                          "e.g. test[:1000] or test[1000:]")
    start, stop = (int(found[k]) if found[k] else None for k in ("start", "stop"))
    return found["name"], slice(start, stop)


def load_split(dataset: Any, spec: str, *, workdir: Path, option: str = "--split") -> DatasetSplit:
    """Load ``spec``; a slice keeps its questions in file order (disjoint parts for training
    and evaluation). Selecting no question is an error naming the split's size."""
    name, part = parse_split(spec, option=option)
    split = dataset.load(name, workdir=workdir)
    if part is not None:
        split = split.select(list(split.queries)[part], split=spec)
    if not split.queries:
        total = "" if part is None else f" of the {len(dataset.load(name, workdir=workdir).queries)} in '{name}'"
        raise ConfigError(f"{option} '{spec}' selects no questions{total}")
    return split
