"""Opaque page tokens (AIP-158): a position plus a fingerprint of the request they belong to."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from memori_server.errors import InvalidArgument

_VERSION = 1
MAX_TOKEN_CHARS = 2048  # the tokens this server issues are a few hundred characters


def fingerprint(*parts: object) -> str:
    """Identifies the request fields a token is valid for; page_size may change between pages."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def encode(kind: str, request_fingerprint: str, position: dict[str, Any]) -> str:
    payload = {"v": _VERSION, "k": kind, "f": request_fingerprint, "p": position}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def damaged(field: str) -> InvalidArgument:
    return InvalidArgument([(field, "damaged page token; omit it to start from the first page")])


def decode(token: str, kind: str, request_fingerprint: str, field: str) -> dict[str, Any]:
    """The position stored in `token`; INVALID_ARGUMENT unless it came from the same request."""
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("longer than any token this server issues")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        valid = (
            isinstance(payload, dict)
            and payload.get("v") == _VERSION
            and payload.get("k") == kind
            and isinstance(payload.get("f"), str)
            and isinstance(payload.get("p"), dict)
        )
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        valid = False
    if not valid:
        raise InvalidArgument(
            [(field, "not a page token issued by this RPC; omit it to start from the first page")]
        )
    if payload["f"] != request_fingerprint:
        raise InvalidArgument(
            [
                (
                    field,
                    "issued for a request with other parameters; keep "
                    "every field except page_size unchanged between pages",
                )
            ]
        )
    position: dict[str, Any] = payload["p"]
    return position


# Positions come back from the caller: each value is checked in type and range, so a forged
# token is INVALID_ARGUMENT and never reaches the database as an overflowing value.
MAX_SEQUENCE = (1 << 63) - 1
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_TEXT_CHARS = 256


def sequence_at(position: dict[str, Any], key: str, field: str) -> int:
    value = position.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQUENCE:
        raise damaged(field)
    return value


def text_at(position: dict[str, Any], key: str, field: str) -> str:
    value = position.get(key)
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise damaged(field)
    return value


def time_at(position: dict[str, Any], key: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text_at(position, key, field))
    except ValueError:
        raise damaged(field) from None
    if value.tzinfo is None or not _EARLIEST <= value <= _LATEST:
        raise damaged(field)
    return value.astimezone(UTC)
