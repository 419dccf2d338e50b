"""Builders for ChatService calls and readers of what the upstream and the session hold."""

from __future__ import annotations

import json
from typing import Any

import grpc
from memori_client import roles
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, common_pb2, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread

MODEL = "gpt-4o-mini"
ROLES = roles.ROLES  # role names as the Python client maps them


def message(role: str, content: str | None = None, **fields: Any) -> common_pb2.ChatMessage:
    built = common_pb2.ChatMessage(role=ROLES[role], **fields)
    if content is not None:
        built.content = content
    return built


def user(text: str) -> common_pb2.ChatMessage:
    return message("user", text)


def chat_request(
    *messages: common_pb2.ChatMessage, model: str = MODEL, **fields: Any
) -> chat_pb2.ChatCompletionRequest:
    return chat_pb2.ChatCompletionRequest(model=model, messages=list(messages), **fields)


def _call(
    kind: type[chat_pb2.CompleteRequest] | type[chat_pb2.StreamCompleteRequest],
    attribution: common_pb2.Attribution,
    messages: tuple[common_pb2.ChatMessage, ...],
    session_id: str,
    request_id: str,
    fields: dict[str, Any],
) -> Any:
    return kind(
        attribution=attribution,
        session_id=session_id,
        request_id=request_id,
        request=chat_request(*messages, **fields),
    )


def complete(
    stub: chat_pb2_grpc.ChatServiceStub,
    attribution: common_pb2.Attribution,
    *messages: common_pb2.ChatMessage,
    session_id: str = "",
    request_id: str = "",
    timeout: float = 30,
    metadata: tuple[tuple[str, str], ...] = (),
    **fields: Any,
) -> chat_pb2.CompleteResponse:
    request = _call(chat_pb2.CompleteRequest, attribution, messages, session_id, request_id, fields)
    response: chat_pb2.CompleteResponse = stub.Complete(request, timeout=timeout, metadata=metadata)
    return response


def open_stream(
    stub: chat_pb2_grpc.ChatServiceStub,
    attribution: common_pb2.Attribution,
    *messages: common_pb2.ChatMessage,
    session_id: str = "",
    request_id: str = "",
    timeout: float = 30,
    metadata: tuple[tuple[str, str], ...] = (),
    **fields: Any,
) -> grpc.CallIterator[chat_pb2.StreamCompleteResponse]:
    """The StreamComplete call itself: iterate it, or cancel it."""
    request = _call(
        chat_pb2.StreamCompleteRequest, attribution, messages, session_id, request_id, fields
    )
    call: grpc.CallIterator[chat_pb2.StreamCompleteResponse] = stub.StreamComplete(
        request, timeout=timeout, metadata=metadata
    )
    return call


def stream(
    stub: chat_pb2_grpc.ChatServiceStub,
    attribution: common_pb2.Attribution,
    *messages: common_pb2.ChatMessage,
    **options: Any,
) -> list[chat_pb2.StreamCompleteResponse]:
    return list(open_stream(stub, attribution, *messages, **options))


def streamed_text(responses: list[chat_pb2.StreamCompleteResponse]) -> str:
    return "".join(choice.delta.content for item in responses for choice in item.chunk.choices)


def sent_messages(upstream: StandinThread, index: int = -1) -> list[dict[str, Any]]:
    """The messages the upstream received in its `index`-th chat request."""
    body = upstream.requests[index]["body"]
    assert isinstance(body, dict)
    messages = body["messages"]
    assert isinstance(messages, list)
    return messages


def sent_text(upstream: StandinThread, index: int = -1) -> str:
    return json.dumps(sent_messages(upstream, index))


def stored(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str
) -> list[tuple[int, str, str]]:
    """(sequence, role, content) of every message the session holds."""
    response: session_pb2.ListMessagesResponse = sessions.ListMessages(
        session_pb2.ListMessagesRequest(session_id=session_id, page_size=1000)
    )
    roles = {value: name for name, value in ROLES.items()}
    return [
        (item.sequence, roles[item.message.role], item.message.content)
        for item in response.messages
    ]
