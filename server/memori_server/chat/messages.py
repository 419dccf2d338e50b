"""Chat messages between their three shapes: memori.v1 protobuf, OpenAI JSON and storage.

The OpenAI JSON shape (a plain dict) is the one the history is assembled in, compared in and
sent upstream; protobuf is only the wire format and storage only the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import tiktoken
from google.protobuf import struct_pb2
from memori_proto.v1 import common_pb2

from memori_server.chat.storable import has_nul, storable
from memori_server.chat.struct_values import NotJson, struct_json
from memori_server.domain import ROLE_NAMES
from memori_server.storage.records import NewMessage
from memori_server.tokens import count_message
from memori_server.validation import Violations

OpenAIMessage = dict[str, Any]
MAX_NAME_CHARS = 100
MAX_TOOL_CALL_ID_CHARS = 255


def struct_dicts(
    structs: Iterable[struct_pb2.Struct], field: str, violations: Violations
) -> list[dict[str, Any]]:
    """Each Struct as a JSON object; a non-finite number is a violation on its field."""
    result = []
    for index, struct in enumerate(structs):
        try:
            result.append(struct_json(struct))
        except NotJson as error:
            violations.add(f"{field}[{index}]", str(error))
    return result


def _tool_calls(
    message: common_pb2.ChatMessage, field: str, violations: Violations
) -> list[dict[str, Any]]:
    calls = []
    for index, call in enumerate(message.tool_calls):
        where = f"{field}.tool_calls[{index}]"
        if not call.id:
            violations.add(f"{where}.id", "required: the id tool results refer to")
        if not call.function.name:
            violations.add(f"{where}.function.name", "required: the function the model called")
        calls.append(
            {
                "id": call.id,
                "type": call.type or "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
        )
    return calls


def _has_nul(message: OpenAIMessage) -> bool:
    text = message.get("content")
    if isinstance(text, str) and len(message) == 2:  # a plain text message: checked cheaply
        return "\x00" in text
    return has_nul(message)


def from_pb(message: common_pb2.ChatMessage, field: str, violations: Violations) -> OpenAIMessage:
    """One request message in OpenAI's shape; problems are added to `violations`."""
    role = ROLE_NAMES.get(message.role)
    if role is None:
        violations.add(
            f"{field}.role",
            "required: ROLE_SYSTEM, ROLE_DEVELOPER, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL",
        )
        role = "user"
    result: OpenAIMessage = {"role": role}
    has_text = message.HasField("content")
    if has_text and message.content_parts:
        violations.add(f"{field}.content", "give content or content_parts, not both")
    if has_text:
        result["content"] = message.content
    elif message.content_parts:
        parts = struct_dicts(message.content_parts, f"{field}.content_parts", violations)
        for index, part in enumerate(parts):
            if not isinstance(part.get("type"), str):
                violations.add(
                    f"{field}.content_parts[{index}].type",
                    'required: the part type, e.g. {"type": "text", "text": "Hi"}',
                )
        result["content"] = parts
    if message.name:
        if len(message.name) > MAX_NAME_CHARS:
            violations.add(f"{field}.name", f"at most {MAX_NAME_CHARS} characters")
        result["name"] = message.name
    if message.tool_calls:
        if role != "assistant":
            violations.add(f"{field}.tool_calls", "only assistant messages carry tool calls")
        result["tool_calls"] = _tool_calls(message, field, violations)
    if role == "tool":
        if not message.tool_call_id:
            violations.add(f"{field}.tool_call_id", "required for a tool message")
        elif len(message.tool_call_id) > MAX_TOOL_CALL_ID_CHARS:
            violations.add(f"{field}.tool_call_id", f"at most {MAX_TOOL_CALL_ID_CHARS} characters")
        result["tool_call_id"] = message.tool_call_id
    elif message.tool_call_id:
        violations.add(f"{field}.tool_call_id", "only tool messages answer a tool call")
    if "content" not in result and "tool_calls" not in result:
        violations.add(f"{field}.content", f"required for a {role} message")
    if _has_nul(result):
        violations.add(field, "contains a NUL character (U+0000), which cannot be stored")
    return result


def _reply_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _reply_content(content: Any) -> str | list[dict[str, Any]]:
    """Text, or content parts when every part is an object; anything else as JSON text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(isinstance(p, dict) for p in content):
        return content
    return _reply_text(content)


def _reply_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """The reply's tool calls in the shape a request carries them; odd entries skipped."""
    result = []
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        arguments = function.get("arguments")
        result.append(
            {
                "id": _reply_text(call.get("id") or ""),
                "type": _reply_text(call.get("type") or "function"),
                "function": {
                    "name": _reply_text(function.get("name") or ""),
                    "arguments": "" if arguments is None else _reply_text(arguments),
                },
            }
        )
    return result


def from_reply(reply: dict[str, Any]) -> OpenAIMessage:
    """The assistant message of an upstream choice, reduced to what a session replays.

    Upstreams are not all careful: whatever JSON the reply holds becomes a message that
    can be stored (storable text, see `storable`) and replayed as a valid request message.
    """
    result: OpenAIMessage = {"role": "assistant"}
    content = reply.get("content")
    if content is not None:
        result["content"] = _reply_content(content)
    calls = _reply_tool_calls(reply.get("tool_calls"))
    if calls:
        result["tool_calls"] = calls
    if "content" not in result and "tool_calls" not in result:
        result["content"] = ""
    stored: OpenAIMessage = storable(result)
    return stored


def to_record(message: OpenAIMessage, encoding: tiktoken.Encoding) -> NewMessage:
    content = message.get("content")
    return NewMessage(
        role=message["role"],
        content=content if isinstance(content, str) else None,
        content_parts=content if isinstance(content, list) else None,
        name=message.get("name"),
        tool_calls=message.get("tool_calls"),
        tool_call_id=message.get("tool_call_id"),
        token_count=count_message(encoding, message),
    )
