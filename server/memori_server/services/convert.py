"""Conversions between storage records and memori.v1 messages."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import json_format, timestamp_pb2
from memori_proto.v1 import common_pb2, session_pb2

from memori_server.storage.records import SessionRecord, StoredMessage
from memori_server.validation import Attribution

ROLE_NAMES = {
    common_pb2.ROLE_SYSTEM: "system",
    common_pb2.ROLE_DEVELOPER: "developer",
    common_pb2.ROLE_USER: "user",
    common_pb2.ROLE_ASSISTANT: "assistant",
    common_pb2.ROLE_TOOL: "tool",
}
ROLE_VALUES = {name: value for value, name in ROLE_NAMES.items()}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


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


def message_pb(stored: StoredMessage) -> session_pb2.Message:
    message = stored.message
    chat = common_pb2.ChatMessage(
        role=ROLE_VALUES.get(message.role, common_pb2.ROLE_UNSPECIFIED),
        content=message.content,
        name=message.name or "",
        tool_call_id=message.tool_call_id or "",
    )
    for part in message.content_parts or []:
        json_format.ParseDict(part, chat.content_parts.add(), ignore_unknown_fields=False)
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        chat.tool_calls.add(
            id=call.get("id", ""),
            type=call.get("type", "function"),
            function=common_pb2.FunctionCall(
                name=function.get("name", ""), arguments=function.get("arguments", "")
            ),
        )
    return session_pb2.Message(
        sequence=stored.sequence,
        message=chat,
        create_time=timestamp(stored.create_time),
        token_count=message.token_count,
    )
