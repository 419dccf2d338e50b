"""`chat.completions.create(...)` arguments as a memori.v1 ChatCompletionRequest.

Typed proto fields carry what every language needs; every other OpenAI parameter (and
`extra_body`) travels in `extra_json`, so no argument is dropped. The service validates the
whole request and answers INVALID_ARGUMENT naming the field, which `create` raises as
`openai.BadRequestError`; only what cannot be encoded at all is refused here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import openai
import pydantic
from google.protobuf import struct_pb2
from memori_proto.v1 import chat_pb2, common_pb2

from memori_client.roles import ROLES

_SCALARS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed")
_MESSAGE_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
# Response-only fields of an assistant message passed back as history: not input.
_OUTPUT_ONLY = frozenset({"refusal", "annotations", "audio", "function_call", "reasoning"})
_KNOWN_MESSAGE_KEYS = _MESSAGE_FIELDS | _OUTPUT_ONLY


def given(value: object) -> bool:
    return not isinstance(value, openai.NotGiven | openai.Omit)


def build(
    model: str, messages: Iterable[Any], params: Mapping[str, Any]
) -> chat_pb2.ChatCompletionRequest:
    """`params`: every create() argument but model, messages, stream and the HTTP options."""
    try:
        return _build(model, messages, params)
    except UnicodeEncodeError as error:  # protobuf strings are UTF-8: no lone surrogates
        bad = error.object[error.start : error.end]
        raise ValueError(f"the request holds text that is not valid Unicode: {bad!r}") from None


def chat_messages(messages: Iterable[Any]) -> list[common_pb2.ChatMessage]:
    """OpenAI-shaped message dicts (or the SDK's message objects) as memori.v1 messages."""
    try:
        return [_message(item, index) for index, item in enumerate(_list(messages))]
    except UnicodeEncodeError as error:
        bad = error.object[error.start : error.end]
        raise ValueError(f"the messages hold text that is not valid Unicode: {bad!r}") from None


def _build(
    model: str, messages: Iterable[Any], params: Mapping[str, Any]
) -> chat_pb2.ChatCompletionRequest:
    request = chat_pb2.ChatCompletionRequest(model=_text(model, "model"))
    request.messages.extend(_message(item, index) for index, item in enumerate(_list(messages)))
    extra: dict[str, Any] = {}
    for name, value in params.items():
        if not given(value):
            continue
        if name in _SCALARS:
            if value is not None:
                setattr(request, name, value)
        elif name == "stop":
            if value is not None:
                request.stop.extend([value] if isinstance(value, str) else list(value))
        elif name == "tools":
            request.tools.extend(_struct(tool, f"tools[{i}]") for i, tool in enumerate(value))
        elif name == "tool_choice":
            if value is not None:
                request.tool_choice.CopyFrom(_value(value))
        elif name == "response_format":
            _check_response_format(value)
            if value is not None:
                request.response_format.CopyFrom(_struct(value, "response_format"))
        elif name == "user":
            if value is not None:
                request.user = _text(value, "user")
        else:
            extra[name] = value
    if extra:
        request.extra_json = json.dumps(
            _plain(extra), allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
    return request


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _list(messages: Iterable[Any]) -> list[Any]:
    if isinstance(messages, str | bytes | Mapping):
        raise TypeError("messages must be a list of message dicts")
    return list(messages)


def _message(item: Any, index: int) -> common_pb2.ChatMessage:
    fields = _plain(item)
    if not isinstance(fields, dict):
        raise TypeError(f"messages[{index}] must be a dict, not {type(item).__name__}")
    unknown = sorted(key for key in fields if key not in _KNOWN_MESSAGE_KEYS and fields[key])
    if unknown:
        raise ValueError(
            f"messages[{index}] has {', '.join(unknown)}, which memori.v1 messages do not "
            "carry (role, content, name, tool_calls, tool_call_id)"
        )
    message = common_pb2.ChatMessage(
        role=ROLES.get(str(fields.get("role")), common_pb2.ROLE_UNSPECIFIED)
    )
    content = fields.get("content")
    if isinstance(content, str):
        message.content = content
    elif isinstance(content, list):
        message.content_parts.extend(
            _struct(part, f"messages[{index}].content[{i}]") for i, part in enumerate(content)
        )
    if fields.get("name"):
        message.name = _text(fields["name"], f"messages[{index}].name")
    for call in fields.get("tool_calls") or ():
        function = call.get("function") or {}
        message.tool_calls.add(
            id=call.get("id") or "",
            type=call.get("type") or "function",
            function=common_pb2.FunctionCall(
                name=function.get("name") or "", arguments=function.get("arguments") or ""
            ),
        )
    if fields.get("tool_call_id"):
        message.tool_call_id = _text(fields["tool_call_id"], f"messages[{index}].tool_call_id")
    return message


def _plain(value: Any) -> Any:
    """JSON-shaped data from what the openai SDK accepts: TypedDicts, models, iterables."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items() if given(item)}
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        return value
    if isinstance(value, Iterable):
        return [_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def _struct(value: Any, name: str) -> struct_pb2.Struct:
    fields = _plain(value)
    if not isinstance(fields, dict):
        raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
    struct = struct_pb2.Struct()
    struct.update(fields)
    return struct


def _value(value: Any) -> struct_pb2.Value:
    wrapped = struct_pb2.Value()
    plain = _plain(value)
    if isinstance(plain, str):
        wrapped.string_value = plain
    elif isinstance(plain, dict):
        wrapped.struct_value.update(plain)
    else:
        raise TypeError(f"tool_choice must be a string or a dict, not {type(value).__name__}")
    return wrapped


def _check_response_format(value: object) -> None:
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        raise TypeError(
            "You tried to pass a `BaseModel` class to `chat.completions.create()`; "
            "you must use `chat.completions.parse()` instead"
        )
