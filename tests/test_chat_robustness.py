"""Nothing a client sends to ChatService yields UNKNOWN or INTERNAL, and what the upstream
answers, however odd, never does either."""

from __future__ import annotations

import json
import random

import grpc
import pytest
from google.protobuf import struct_pb2
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, common_pb2, session_pb2_grpc

from standin_upstream import StandinThread
from tests.chat_calls import complete, stored, stream, user
from tests.factories import attribution, new_id
from tests.rpc_errors import CallFailed, call_fails

NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
_TEXTS = ["", "hi", "é€😀", "\x00", "x" * 300, "6F1C2D3E-4B5A-4C6D-8E7F-8091A2B3C4D5", new_id()]
_EXTRA = [
    *("", "{}", "null", "[]", "{bad", '{"logprobs": true}', '{"stream": true}', '{"n": 0}'),
    '{"metadata": {"k": "\\ud800"}}',  # a lone surrogate, spelled as a JSON escape
]


def _message(rng: random.Random) -> common_pb2.ChatMessage:
    message = common_pb2.ChatMessage(role=common_pb2.Role.ValueType(rng.randint(-1, 7)))
    if rng.random() < 0.7:
        message.content = rng.choice(_TEXTS)
    if rng.random() < 0.2:
        part = struct_pb2.Struct()
        part.update(rng.choice([{"type": "text", "text": "t"}, {"x": 1}, {"type": 3}]))
        message.content_parts.append(part)
    if rng.random() < 0.2:
        message.tool_calls.add(id=rng.choice(_TEXTS), function={"name": rng.choice(_TEXTS)})
    if rng.random() < 0.2:
        message.tool_call_id = rng.choice(_TEXTS)
    if rng.random() < 0.1:
        message.name = rng.choice(_TEXTS)
    return message


def _request(rng: random.Random) -> chat_pb2.CompleteRequest:
    request = chat_pb2.CompleteRequest(
        session_id=rng.choice(_TEXTS),
        request_id=rng.choice(["", new_id(), "a b", "r" * 200]),
        request=chat_pb2.ChatCompletionRequest(
            model=rng.choice(["", "gpt-4o-mini", "m" * 300]),
            messages=[_message(rng) for _ in range(rng.randint(0, 4))],
            extra_json=rng.choice(_EXTRA),
        ),
    )
    if rng.random() < 0.9:
        request.attribution.entity_id = rng.choice(_TEXTS)
        request.attribution.process_id = rng.choice(_TEXTS)
    if rng.random() < 0.3:
        request.request.temperature = rng.choice([-1.0, 0.5, 1e308, float("nan")])
    if rng.random() < 0.2:
        request.request.n = rng.choice([-1, 0, 2, 2**62])
    return request


def test_random_chat_requests_never_fail_as_internal_or_unknown(
    chat: chat_pb2_grpc.ChatServiceStub,
) -> None:
    rng = random.Random(20261128)
    for _ in range(200):
        request = _request(rng)
        try:
            if rng.random() < 0.5:
                chat.Complete(request, timeout=10)
            else:
                streamed = chat_pb2.StreamCompleteRequest()
                streamed.ParseFromString(request.SerializeToString())
                list(chat.StreamComplete(streamed, timeout=10))
        except grpc.RpcError as error:
            failed = CallFailed(error)
            assert failed.code not in NEVER, failed.message
    assert complete(chat, attribution(), user("still answering")).completion.id


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("this is not json", "application/json"),
        ('{"object": "chat.completion"}', "application/json"),
        ('{"choices": []}', "application/json"),
        ('{"choices": [{"index": 0, "message": "text"}]}', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ("<html>bad gateway</html>", "text/html"),
    ],
    ids=["not-json", "no-choices", "empty-choices", "message-not-object", "array", "html"],
)
def test_an_odd_upstream_answer_is_unavailable_and_stores_nothing(
    body: str,
    content_type: str,
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, session_id = attribution(), new_id()
    complete(chat, who, user("before"), session_id=session_id)
    upstream.script({"raw": {"status": 200, "body": body, "content_type": content_type}})
    failed = call_fails(
        lambda: complete(chat, who, user("odd"), session_id=session_id),
        grpc.StatusCode.UNAVAILABLE,
    )
    assert failed.reason == "UPSTREAM_INVALID_RESPONSE", failed.message
    assert len(stored(sessions, session_id)) == 2


def test_an_error_inside_a_stream_ends_it_unavailable_and_stores_nothing(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, session_id = attribution(), new_id()
    complete(chat, who, user("before"), session_id=session_id)
    event = json.dumps({"error": {"message": "model overloaded", "type": "server_error"}})
    upstream.script(
        {"raw": {"status": 200, "body": f"data: {event}\n\n", "content_type": "text/event-stream"}}
    )
    failed = call_fails(
        lambda: stream(chat, who, user("odd"), session_id=session_id),
        grpc.StatusCode.UNAVAILABLE,
    )
    assert "model overloaded" in failed.message
    assert len(stored(sessions, session_id)) == 2
