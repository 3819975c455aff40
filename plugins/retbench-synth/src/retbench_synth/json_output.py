"""The JSON object in a generation (models wrap it in prose or code fences, or go on writing
after it)."""

from __future__ import annotations

import json
from typing import Any

DECODER = json.JSONDecoder()


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first complete JSON object in ``text`` (text around it ignored), or None."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None
