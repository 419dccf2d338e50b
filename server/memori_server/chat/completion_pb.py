"""Upstream JSON (completion, chunk) to the typed memori.v1 messages, tolerant of gaps.

The raw JSON travels next to these, so anything an upstream adds or omits is never lost;
the typed fields only have to be right where the upstream filled them in.
"""

from __future__ import annotations

from typing import Any

from memori_proto.v1 import chat_pb2, common_pb2

from memori_server.chat.storable import valid_unicode
from memori_server.domain import ROLE_VALUES

_INT64 = range(-(1 << 63), 1 << 63)


def _int(value: Any) -> int:
    """An int64 field's value; anything else (a float, a bool, out of range) is 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _INT64:
        return value
    return 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return valid_unicode(value) if isinstance(value, str) else ""


def _usage(value: Any) -> chat_pb2.Usage | None:
    if not isinstance(value, dict):
        return None
    return chat_pb2.Usage(
        prompt_tokens=_int(value.get("prompt_tokens")),
        completion_tokens=_int(value.get("completion_tokens")),
        total_tokens=_int(value.get("total_tokens")),
    )


def _function(value: Any) -> common_pb2.FunctionCall:
    function = value if isinstance(value, dict) else {}
    return common_pb2.FunctionCall(
        name=_str(function.get("name")), arguments=_str(function.get("arguments"))
    )


def _message(value: Any) -> common_pb2.ChatMessage:
    message = value if isinstance(value, dict) else {}
    result = common_pb2.ChatMessage(
        role=ROLE_VALUES.get(_str(message.get("role")) or "assistant", common_pb2.ROLE_UNSPECIFIED)
    )
    content = message.get("content")
    if isinstance(content, str):
        result.content = valid_unicode(content)
    for call in _list(message.get("tool_calls")):
        if isinstance(call, dict):
            result.tool_calls.add(
                id=_str(call.get("id")),
                type=_str(call.get("type")),
                function=_function(call.get("function")),
            )
    return result


def completion_pb(body: dict[str, Any]) -> chat_pb2.ChatCompletion:
    completion = chat_pb2.ChatCompletion(
        id=_str(body.get("id")), model=_str(body.get("model")), created=_int(body.get("created"))
    )
    for choice in _list(body.get("choices")):
        if isinstance(choice, dict):
            completion.choices.add(
                index=_int(choice.get("index")),
                message=_message(choice.get("message")),
                finish_reason=_str(choice.get("finish_reason")),
            )
    usage = _usage(body.get("usage"))
    if usage is not None:
        completion.usage.CopyFrom(usage)
    return completion


def _delta(value: Any) -> chat_pb2.ChatMessageDelta:
    delta = value if isinstance(value, dict) else {}
    result = chat_pb2.ChatMessageDelta(
        role=ROLE_VALUES.get(_str(delta.get("role")), common_pb2.ROLE_UNSPECIFIED)
    )
    content = delta.get("content")
    if isinstance(content, str):
        result.content = valid_unicode(content)
    for fragment in _list(delta.get("tool_calls")):
        if isinstance(fragment, dict):
            result.tool_calls.add(
                index=_int(fragment.get("index")),
                id=_str(fragment.get("id")),
                type=_str(fragment.get("type")),
                function=_function(fragment.get("function")),
            )
    return result


def chunk_pb(body: dict[str, Any]) -> chat_pb2.ChatCompletionChunk:
    chunk = chat_pb2.ChatCompletionChunk(
        id=_str(body.get("id")), model=_str(body.get("model")), created=_int(body.get("created"))
    )
    for choice in _list(body.get("choices")):
        if isinstance(choice, dict):
            chunk.choices.add(
                index=_int(choice.get("index")),
                delta=_delta(choice.get("delta")),
                finish_reason=_str(choice.get("finish_reason")),
            )
    usage = _usage(body.get("usage"))
    if usage is not None:
        chunk.usage.CopyFrom(usage)
    return chunk
