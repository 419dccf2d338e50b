"""Just enough HTTP/1.1 for the OpenAI SDK: Content-Length bodies, keep-alive, chunked replies.

Parsing is kept to a few string splits per request, because benchmarks push thousands of
requests a second through a single event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

_PHRASES = {status.value: status.phrase for status in HTTPStatus}
LAST_CHUNK = b"0\r\n\r\n"


@dataclass(slots=True)
class Request:
    """One parsed request; `headers` has lower-case names, repeated headers joined by ", "."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class HttpError(Exception):
    """A request we cannot frame; answered with `status`, then the connection is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """Read the next request, or None once the client has gone away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise HttpError(431, "request head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[0]:  # RFC 9112 lets a client send blank lines before a request
        lines.pop(0)
    parts = lines[0].split(" ") if lines else []
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    headers = _parse_headers(lines[1:])
    if "transfer-encoding" in headers:
        raise HttpError(411, "chunked request bodies are not supported; send Content-Length")
    length = _content_length(headers.get("content-length"))
    if length and headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        body = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        return None
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked to.
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return Request(method, target.partition("?")[0], headers, body, keep_alive)


def _parse_headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        name = name.lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _content_length(value: str | None) -> int:
    if value is None:
        return 0
    if not value.isdigit():
        raise HttpError(400, "invalid Content-Length")
    return int(value)


def response_head(
    status: int,
    content_type: str,
    *,
    length: int | None,
    close: bool,
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """Status line and headers; `length=None` means a chunked body follows."""
    lines = [
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
    ]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    if extra:
        lines.extend(f"{name}: {value}" for name, value in extra.items())
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def json_response(
    status: int, payload: object, *, close: bool, extra: Mapping[str, str] | None = None
) -> bytes:
    """A complete response carrying `payload` as compact JSON."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = response_head(status, "application/json", length=len(body), close=close, extra=extra)
    return head + body


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)
