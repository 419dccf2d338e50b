"""Plain records the storage layer returns; independent of protobuf and SQLAlchemy."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from memori_server.domain import Attribution


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    tenant_id: str
    attribution: Attribution
    create_time: datetime
    update_time: datetime
    message_count: int


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A chat message in OpenAI's shape, ready to be appended to a session."""

    role: str
    content: str | None = None
    content_parts: list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    token_count: int = 0


@dataclass(frozen=True, slots=True)
class StoredMessage:
    sequence: int
    message: NewMessage
    create_time: datetime


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """A stored message as the upstream gets it, encoded once: a window held in memory is
    sent again on every call without being converted or encoded again."""

    role: str
    encoded: bytes
    """The message in OpenAI's shape as canonical JSON (`encode_message`): the bytes the
    upstream body carries, and the message's identity (equal messages, equal bytes)."""
    token_count: int


# One encoder for every message: json.dumps with options builds a new one per call.
_MESSAGE_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def encode_message(message: dict[str, Any]) -> bytes:
    """A chat message as compact JSON with sorted keys, so equal messages encode equally."""
    return _MESSAGE_JSON.encode(message).encode()


def as_history(message: NewMessage) -> HistoryMessage:
    """A message being stored as the upstream will get it from the session."""
    return HistoryMessage(
        message.role,
        encode_message(
            openai_message(
                message.role,
                message.content,
                message.content_parts,
                message.name,
                message.tool_calls,
                message.tool_call_id,
            )
        ),
        message.token_count,
    )


def openai_message(
    role: str,
    content: str | None,
    content_parts: list[dict[str, Any]] | None,
    name: str | None,
    tool_calls: list[dict[str, Any]] | None,
    tool_call_id: str | None,
) -> dict[str, Any]:
    """The OpenAI chat message of stored fields: the one place that shape is built."""
    result: dict[str, Any] = {"role": role}
    if content is not None:
        result["content"] = content
    elif content_parts is not None:
        result["content"] = content_parts
    if name:
        result["name"] = name
    if tool_calls:
        result["tool_calls"] = tool_calls
    if tool_call_id:
        result["tool_call_id"] = tool_call_id
    return result


@dataclass(frozen=True, slots=True)
class Completion:
    """A request id's result, stored in the transaction of the turn it produced."""

    request_id: str
    owner: str
    """The claim's owner token: the turn is stored only while this call holds the claim."""
    response: str | None
    """The result to replay; None when it was too large to keep."""
    ttl_seconds: float
    derive: Callable[[SessionRecord], str] | None = None
    """When the result depends on where the turn landed (an append's sequence numbers): made
    from the session after the turn, in the same transaction, instead of `response`."""

    def expire_time(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.ttl_seconds)
