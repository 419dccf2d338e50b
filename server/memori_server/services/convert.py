"""Conversions between storage records and memori.v1 messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from memori_proto.v1 import common_pb2, session_pb2

from memori_server.domain import ROLE_VALUES, Attribution
from memori_server.storage.records import SessionRecord, StoredMessage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """As `Timestamp.FromDatetime` (a naive time is UTC), in integer arithmetic: a quarter
    of its cost, and every Session message carries two."""
    since = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000
    )


def attribution_pb(attribution: Attribution) -> common_pb2.Attribution:
    return common_pb2.Attribution(
        entity_id=attribution.entity_id, process_id=attribution.process_id
    )


def session_pb(record: SessionRecord) -> session_pb2.Session:
    return session_pb2.Session(
        id=record.id,
        attribution=attribution_pb(record.attribution),
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        message_count=record.message_count,
    )


def _content_part(part: object) -> struct_pb2.Struct:
    """A stored content part as a Struct; whatever a part holds, the session stays listable."""
    struct = struct_pb2.Struct()
    try:
        if isinstance(part, dict):
            json_format.ParseDict(part, struct)
            return struct
    except (json_format.ParseError, TypeError, ValueError):
        struct.Clear()
    struct.update({"type": "text", "text": json.dumps(part, ensure_ascii=False, default=str)})
    return struct


def _tool_call(call: object) -> common_pb2.ToolCall:
    fields = call if isinstance(call, dict) else {}
    function = fields.get("function")
    function = function if isinstance(function, dict) else {}

    def text(value: object) -> str:
        return value if isinstance(value, str) else ""

    return common_pb2.ToolCall(
        id=text(fields.get("id")),
        type=text(fields.get("type")) or "function",
        function=common_pb2.FunctionCall(
            name=text(function.get("name")), arguments=text(function.get("arguments"))
        ),
    )


def message_pb(stored: StoredMessage) -> session_pb2.Message:
    message = stored.message
    chat = common_pb2.ChatMessage(
        role=ROLE_VALUES.get(message.role, common_pb2.ROLE_UNSPECIFIED),
        content=message.content,
        name=message.name or "",
        tool_call_id=message.tool_call_id or "",
    )
    parts = message.content_parts if isinstance(message.content_parts, list) else []
    chat.content_parts.extend(_content_part(part) for part in parts)
    calls = message.tool_calls if isinstance(message.tool_calls, list) else []
    chat.tool_calls.extend(_tool_call(call) for call in calls)
    return session_pb2.Message(
        sequence=stored.sequence,
        message=chat,
        create_time=timestamp(stored.create_time),
        token_count=message.token_count,
    )


# A page of messages stays well within gRPC's default 4 MiB receive limit, so any client can
# read any session, however large its messages: a page ends early (with a next token) when it
# would pass this, and always holds at least one message.
PAGE_BYTES = 2 * 1024 * 1024


def message_pages(stored: list[StoredMessage]) -> list[list[session_pb2.Message]]:
    """`stored` as messages, split into pages of at most PAGE_BYTES (one message at least)."""
    pages: list[list[session_pb2.Message]] = [[]]
    size = 0
    for item in stored:
        message = message_pb(item)
        length = message.ByteSize()
        if pages[-1] and size + length > PAGE_BYTES:
            pages.append([])
            size = 0
        pages[-1].append(message)
        size += length
    return pages if pages[0] else []
