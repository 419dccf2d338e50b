"""Inputs that used to end as INTERNAL: forged page tokens, NUL characters, odd upstream
replies. Each is now a clear status, and whatever was stored stays listable."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from memori_proto.v1 import chat_pb2_grpc, common_pb2, session_pb2, session_pb2_grpc
from memori_server import page_tokens
from memori_server.services.tenancy import DEFAULT_TENANT

from standin_upstream import Behaviour, StandinThread
from tests.chat_calls import complete, message, stream, user
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import CallFailed, call_fails

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_reported_token_without_a_fingerprint_is_invalid_argument(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    request = session_pb2.ListMessagesRequest(
        session_id=new_id(), page_token="eyJ2IjogMSwgImsiOiAibWVzc2FnZXMiLCAicCI6IHsicyI6IDF9fQ"
    )
    failed = call_fails(lambda: sessions.ListMessages(request), INVALID)
    assert "page_token" in failed.field_violations


@pytest.mark.parametrize("sequence", [10**20, -1, 2**63, 1.5, "1", None, True])
def test_forged_message_positions_are_invalid_argument(
    sessions: session_pb2_grpc.SessionServiceStub, sequence: object
) -> None:
    session_id = new_id()
    forged = token(
        {
            "v": 1,
            "k": "messages",
            "f": page_tokens.fingerprint(DEFAULT_TENANT, session_id),
            "p": {"s": sequence},
        }
    )
    request = session_pb2.ListMessagesRequest(session_id=session_id, page_token=forged)
    failed = call_fails(lambda: sessions.ListMessages(request), INVALID)
    assert "damaged page token" in failed.field_violations["page_token"]


@pytest.mark.parametrize(
    "position",
    [
        {"t": "9999-12-31T23:59:59.999999+00:00", "i": "x"},
        {"t": "0001-01-01T00:00:00+00:00", "i": "x"},
        {"t": "2026-01-01T00:00:00", "i": "x"},  # no time zone
        {"t": "yesterday", "i": "x"},
        {"t": "2026-01-01T00:00:00+00:00", "i": 7},
        {"t": "2026-01-01T00:00:00+00:00", "i": "x" * 10_000},
        {"t": "2026-01-01T00:00:00+00:00", "i": "x", "c": "9999-12-31T23:59:59+00:00"},
        {"t": "2026-01-01T00:00:00+00:00", "i": "x", "c": 5},
    ],
)
def test_forged_session_positions_are_invalid_argument(
    sessions: session_pb2_grpc.SessionServiceStub, position: dict[str, Any]
) -> None:
    who = attribution()
    fingerprint = page_tokens.fingerprint(DEFAULT_TENANT, who.entity_id, who.process_id, "", "")
    forged = token({"v": 1, "k": "sessions", "f": fingerprint, "p": position})
    request = session_pb2.ListRequest(attribution=who, page_token=forged)
    call_fails(lambda: sessions.List(request), INVALID)


def _nul_messages() -> list[common_pb2.ChatMessage]:
    part = struct_pb2.Struct()
    part.update({"type": "text", "text": "a\x00b"})
    call = common_pb2.ToolCall(
        id="c1", function=common_pb2.FunctionCall(name="f", arguments='{"x": "\x00"}')
    )
    return [
        user("nul \x00 here"),
        message("user", "x", name="n\x00me"),
        common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content_parts=[part]),
        message("assistant", tool_calls=[call]),
    ]


@pytest.mark.parametrize("index", range(4))
def test_nul_characters_are_refused_before_the_upstream_on_every_database(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread, index: int
) -> None:
    bad = _nul_messages()[index]
    failed = call_fails(lambda: complete(chat, attribution(), bad), INVALID)
    assert "NUL" in failed.field_violations["request.messages[0]"]
    assert upstream.requests == [], "nothing billed for a turn that cannot be stored"


def _odd_reply(content: str) -> Behaviour:
    return {"raw": {"body": content}}


_COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant"}}],
}


def _completion(**message: Any) -> str:
    body = json.loads(json.dumps(_COMPLETION))
    body["choices"][0]["message"].update(message)
    return json.dumps(body)


ODD_COMPLETIONS = {
    "created out of range": json.dumps({**_COMPLETION, "created": 2**70}),
    "usage out of range": json.dumps({**_COMPLETION, "usage": {"prompt_tokens": -(2**70)}}),
    "index as text": json.dumps(
        {**_COMPLETION, "choices": [{"index": "0", "message": {"content": "x"}}]}
    ),
    "content parts that are not objects": _completion(content=[1, "two", None]),
    "content parts as objects": _completion(content=[{"type": "text", "text": "hi"}]),
    "content as an object": _completion(content={"text": "hi"}),
    "NUL and a lone surrogate": _completion(content="a\x00b\ud800c"),
    "NaN": _completion(content=[{"type": "text", "score": float("nan")}]),
    "tool calls not a list": _completion(tool_calls="call_1"),
    "tool call arguments as an object": _completion(
        tool_calls=[{"id": "c", "function": {"name": "f", "arguments": {"x": 1}}}, 7]
    ),
    "tool call function not an object": _completion(tool_calls=[{"id": "c", "function": 3}]),
}


def _sse(*events: object) -> str:
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"


_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
ODD_STREAMS = {
    "delta not an object": _sse(
        {**_CHUNK, "choices": [{"index": 0, "delta": "text"}]},
        {**_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ),
    "index as text and huge": _sse(
        {**_CHUNK, "choices": [{"index": "a", "delta": {"content": "x"}}]},
        {**_CHUNK, "choices": [{"index": 2**70, "delta": {"content": "x"}}]},
        {**_CHUNK, "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]},
    ),
    "tool call fragments of every shape": _sse(
        {
            **_CHUNK,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            7,
                            {"index": None, "id": 5, "function": "f"},
                            {"index": 0, "function": {"name": 3, "arguments": ["x"]}},
                        ]
                    },
                }
            ],
        },
        {**_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": 42}]},
    ),
    "choices not a list": _sse(
        {**_CHUNK, "choices": {"0": 1}, "created": 2**80},
        {
            **_CHUNK,
            "choices": [{"index": 0, "delta": {"content": "\ud800"}, "finish_reason": "stop"}],
        },
    ),
}


def _listable(sessions: session_pb2_grpc.SessionServiceStub, session_id: str) -> None:
    page = sessions.ListMessages(session_pb2.ListMessagesRequest(session_id=session_id))
    assert page.messages, "the turn was stored"
    sessions.Get(session_pb2.GetRequest(session_id=session_id))


@pytest.mark.parametrize("case", sorted(ODD_COMPLETIONS))
def test_odd_upstream_completions_are_stored_listable_or_refused_never_internal(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
    case: str,
) -> None:
    upstream.script(_odd_reply(ODD_COMPLETIONS[case]))
    try:
        response = complete(chat, attribution(), user("odd"))
    except grpc.RpcError as error:
        failed = CallFailed(error)
        assert failed.code == grpc.StatusCode.UNAVAILABLE, failed.message
        assert failed.reason == "UPSTREAM_INVALID_RESPONSE"
        return
    assert response.completion_json == ODD_COMPLETIONS[case]  # relayed exactly
    _listable(sessions, response.session.id)


@pytest.mark.parametrize("case", sorted(ODD_STREAMS))
def test_odd_upstream_streams_are_stored_listable_or_refused_never_internal(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
    case: str,
) -> None:
    upstream.script({"raw": {"body": ODD_STREAMS[case], "content_type": "text/event-stream"}})
    try:
        responses = stream(chat, attribution(), user("odd"))
    except grpc.RpcError as error:
        failed = CallFailed(error)
        assert failed.code not in NEVER, failed.message
        assert failed.code == grpc.StatusCode.UNAVAILABLE
        return
    _listable(sessions, responses[0].session.id)


def test_the_stored_reply_is_storable_and_the_caller_gets_it_exactly(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    body = ODD_COMPLETIONS["NUL and a lone surrogate"]
    upstream.script(_odd_reply(body))
    response = complete(chat, attribution(), user("odd"))
    assert response.completion_json == body
    page = sessions.ListMessages(session_pb2.ListMessagesRequest(session_id=response.session.id))
    assert page.messages[-1].message.content == "a\ufffdb\ufffdc"


def test_database_errors_never_carry_message_content(server: InProcessServer) -> None:
    assert server.server.store is not None
    engine = server.server.store._db.engine
    assert engine.hide_parameters


def test_deeply_nested_page_tokens_and_extra_json_are_invalid_argument(
    chat: chat_pb2_grpc.ChatServiceStub, sessions: session_pb2_grpc.SessionServiceStub
) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 1000 + b"1" + b"]" * 1000).decode()
    request = session_pb2.ListMessagesRequest(session_id=new_id(), page_token=deep)
    call_fails(lambda: sessions.ListMessages(request), INVALID)
    nested = '{"a":' * 2000 + "1" + "}" * 2000
    failed = call_fails(
        lambda: complete(chat, attribution(), user("x"), extra_json=nested), INVALID
    )
    assert "nested too deeply" in failed.field_violations["request.extra_json"]


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_in_struct_fields_are_invalid_argument_on_the_field(
    chat: chat_pb2_grpc.ChatServiceStub, number: float
) -> None:
    part = struct_pb2.Struct()
    part.update({"type": "text", "text": "x", "score": number})
    with_part = common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content_parts=[part])
    failed = call_fails(lambda: complete(chat, attribution(), with_part), INVALID)
    assert "request.messages[0].content_parts[0]" in failed.field_violations
    choice = struct_pb2.Value(number_value=number)
    failed = call_fails(
        lambda: complete(chat, attribution(), user("x"), tool_choice=choice), INVALID
    )
    assert "request.tool_choice" in failed.field_violations


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("status", [200, 400])
def test_a_body_in_a_charset_it_is_not_is_unavailable(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread, streamed: bool, status: int
) -> None:
    kind = "text/event-stream" if streamed else "application/json"
    upstream.script(
        {"raw": {"status": status, "body": "null", "content_type": f"{kind}; charset=utf-16"}}
    )
    call = stream if streamed else complete
    with pytest.raises(grpc.RpcError) as caught:
        call(chat, attribution(), user("x"))
    assert CallFailed(caught.value).code not in NEVER
