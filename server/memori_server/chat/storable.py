"""Text the databases can store, the same on SQLite and PostgreSQL.

PostgreSQL refuses NUL in text, and neither database takes a lone surrogate (which JSON
escapes can spell). A caller's NUL is refused before the upstream is called (nothing is
billed for a turn that cannot be stored); an upstream reply is billed already, so what is
stored of it is made storable instead (U+FFFD for the character, null for a non-finite
number), while the caller still gets the reply exactly as the upstream sent it.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (from JSON escapes) replaced: protobuf strings are UTF-8."""
    return _SURROGATE.sub(REPLACEMENT, text) if _SURROGATE.search(text) else text


def has_nul(value: Any) -> bool:
    """Whether any string in `value` (keys included) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


def storable(value: Any) -> Any:
    """`value` (JSON-shaped) with NUL and lone surrogates replaced and non-finite numbers
    nulled; unchanged values are returned as they are."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value) if _UNSTORABLE.search(value) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value
