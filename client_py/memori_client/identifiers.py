"""Client-side checks of session ids and attribution, so misuse fails before any RPC."""

from __future__ import annotations

import uuid

MAX_ATTRIBUTION_CHARS = 100  # the Memori SDK's limit, and the service's


def session_id(value: object) -> str:
    """A UUID v4 as the service stores it: canonical, lower case."""
    if isinstance(value, uuid.UUID):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a UUID (a session id is a UUID v4)") from None
    else:
        raise ValueError(f"a session id is a UUID v4 string, not {type(value).__name__}")
    if parsed.version != 4 or parsed.variant != uuid.RFC_4122:
        raise ValueError(f"{value!r} is not a UUID v4 (a session id is a random UUID v4)")
    return str(parsed)


def attribution_id(value: object, name: str, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{name} must not be empty: it names the end user, e.g. 'user-123'")
    if len(value) > MAX_ATTRIBUTION_CHARS:
        raise ValueError(f"{name} has {len(value)} characters; at most {MAX_ATTRIBUTION_CHARS}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{name} contains control characters")
    return value
