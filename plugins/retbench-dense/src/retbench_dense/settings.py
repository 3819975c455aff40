"""Encoder settings and passage formatting (no torch import: the plugin loads fast)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from retbench import ConfigError, Passage

POOLINGS = ("cls", "mean", "last-token")


@dataclass(frozen=True)
class EncoderSettings:
    pooling: str = "cls"
    normalize: bool = False
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_length: int = 64
    passage_max_length: int = 256
    title_separator: str = " "
    bidirectional: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got '{self.pooling}'")


def settings_from_json(saved: dict[str, Any]) -> EncoderSettings:
    """Saved settings; keys of older versions (``dim``, now a search-time parameter) are ignored."""
    known = {f.name for f in fields(EncoderSettings)}
    return EncoderSettings(**{k: v for k, v in saved.items() if k in known})


def passage_text(passage: Passage, separator: str) -> str:
    return f"{passage.title}{separator}{passage.text}" if passage.title else passage.text
