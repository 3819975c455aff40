"""The JSON object in a generation (models wrap it in prose or code fences)."""

from __future__ import annotations

import json
import re
from typing import Any

OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The outermost ``{...}`` of ``text`` parsed as a JSON object, or None."""
    found = OBJECT.search(text)
    if not found:
        return None
    try:
        value = json.loads(found.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
