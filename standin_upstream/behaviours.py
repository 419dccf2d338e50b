"""Scripted behaviours: JSON-friendly dicts, checked up front so a typo fails the test early."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypedDict, cast


class FunctionSpec(TypedDict, total=False):
    name: str
    arguments: str | dict[str, Any]  # a dict is sent JSON-encoded, as OpenAI does


class ToolCallSpec(TypedDict, total=False):
    id: str
    type: str
    function: FunctionSpec


class ReplySpec(TypedDict, total=False):
    content: str | None  # left out: the echo, or None when there are tool calls
    tool_calls: list[ToolCallSpec]
    finish_reason: str  # default "tool_calls" with tool calls, else "stop"


class FailSpec(TypedDict, total=False):
    status: int  # default 500
    message: str
    type: str
    code: str | None
    param: str | None  # the request parameter the error is about
    retry_after: float | None  # seconds, sent as Retry-After
    retry_after_ms: float | None  # sent as retry-after-ms


class RawSpec(TypedDict, total=False):
    status: int  # default 200
    body: str  # sent as it is: junk, a wrong shape, or hand-made SSE events
    body_base64: str  # instead of body: bytes sent as they are, such as invalid UTF-8
    content_type: str  # default application/json


class Behaviour(TypedDict, total=False):
    """What the next chat request gets; every key is optional and `{}` is the plain echo."""

    reply: ReplySpec
    fail: FailSpec
    delay: float  # seconds before replying, on top of the server-wide delay
    stall: bool  # never reply; hold the connection until the client or server goes
    cut_after_chunks: int  # streams: send this many SSE events, then drop the connection
    end_without_finish: bool  # streams: no chunk with a finish_reason, but still [DONE]
    chunk_delay: float  # streams: seconds between SSE events
    raw: RawSpec  # answer exactly this instead of a completion (streams or not)


_NUMBER = (int, float)
_TOP: dict[str, tuple[type, ...]] = {
    "reply": (dict,),
    "fail": (dict,),
    "delay": _NUMBER,
    "stall": (bool,),
    "cut_after_chunks": (int,),
    "end_without_finish": (bool,),
    "chunk_delay": _NUMBER,
    "raw": (dict,),
}
_REPLY: dict[str, tuple[type, ...]] = {
    "content": (str, type(None)),
    "tool_calls": (list,),
    "finish_reason": (str,),
}
_RAW: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "body": (str,),
    "body_base64": (str,),
    "content_type": (str,),
}
_FAIL: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "message": (str,),
    "type": (str,),
    "code": (str, type(None)),
    "param": (str, type(None)),
    "retry_after": (*_NUMBER, type(None)),
    "retry_after_ms": (*_NUMBER, type(None)),
}


def validate_behaviour(raw: object) -> Behaviour:
    """Return `raw` as a Behaviour, or raise ValueError saying what is wrong with it."""
    fields = _check_fields(raw, _TOP, "behaviour")
    if fields.get("delay", 0) < 0 or fields.get("chunk_delay", 0) < 0:
        raise ValueError("behaviour: delays must not be negative")
    if fields.get("cut_after_chunks", 0) < 0:
        raise ValueError("behaviour: cut_after_chunks must not be negative")
    if "fail" in fields:
        fail = _check_fields(fields["fail"], _FAIL, "fail")
        if not 400 <= fail.get("status", 500) <= 599:
            raise ValueError("fail.status must be a 4xx or 5xx code")
    if "raw" in fields:
        spec = _check_fields(fields["raw"], _RAW, "raw")
        try:
            base64.b64decode(spec.get("body_base64", ""), validate=True)
        except binascii.Error as error:
            raise ValueError(f"raw.body_base64 is not base64: {error}") from None
    if "reply" in fields:
        reply = _check_fields(fields["reply"], _REPLY, "reply")
        for call in reply.get("tool_calls", []):
            _check_tool_call(call)
    return cast(Behaviour, raw)


def _check_tool_call(call: object) -> None:
    fields = _check_fields(call, {"id": (str,), "type": (str,), "function": (dict,)}, "tool_call")
    function = _check_fields(
        fields.get("function"), {"name": (str,), "arguments": (str, dict)}, "tool_call.function"
    )
    if "name" not in function:
        raise ValueError("tool_call.function needs a name")


def _check_fields(raw: object, allowed: dict[str, tuple[type, ...]], what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be an object, not {type(raw).__name__}")
    for key, value in raw.items():
        if key not in allowed:
            raise ValueError(f"{what}: unknown key {key!r} (known: {', '.join(allowed)})")
        types = allowed[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"{what}.{key} has the wrong type: {value!r}")
    return cast(dict[str, Any], raw)
