"""Every error a chat call can meet maps to its status (DESIGN §5), and stores nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread
from tests.chat_calls import chat_request, complete, message, user
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import CallFailed, call_fails


def _session_is_untouched(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str, message_count: int
) -> None:
    session = sessions.Get(session_pb2.GetRequest(session_id=session_id)).session
    assert session.message_count == message_count


def test_every_invalid_field_is_reported_at_once_and_nothing_is_sent(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    both = message("user", "text")
    part = struct_pb2.Struct()
    part.update({"text": "no type"})
    both.content_parts.append(part)
    untyped_part = message("user", content_parts=[part])
    request = chat_pb2.CompleteRequest(
        session_id="not-a-uuid",
        request_id="x" * 200,
        request=chat_pb2.ChatCompletionRequest(
            messages=[
                message("tool", "orphan"),
                both,
                chat_pb2.ChatCompletionRequest().messages.add(),
                message("user", "hi", tool_call_id="c1"),
                untyped_part,
            ],
            extra_json='{"stream": true, "messages": []}',
        ),
    )
    failed = call_fails(
        lambda: chat.Complete(request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT
    )
    violations = failed.field_violations
    for field in (
        "attribution",
        "session_id",
        "request_id",
        "request.model",
        "request.messages[0].tool_call_id",
        "request.messages[1].content",
        "request.messages[4].content_parts[0].type",
        "request.messages[2].role",
        "request.messages[3].tool_call_id",
        "request.extra_json",
    ):
        assert field in violations, (field, violations)
    assert "messages, stream" in violations["request.extra_json"]
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("extra_json", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"temperature_x": NaN}', "NaN is not JSON"),
        ('{"stream_options": "\\udcff"}', "invalid Unicode"),
    ],
)
def test_extra_json_must_be_a_json_object(
    extra_json: str, problem: str, chat: chat_pb2_grpc.ChatServiceStub
) -> None:
    failed = call_fails(
        lambda: complete(chat, attribution(), user("x"), extra_json=extra_json),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert problem in failed.field_violations["request.extra_json"]


def test_temperature_must_be_finite(chat: chat_pb2_grpc.ChatServiceStub) -> None:
    failed = call_fails(
        lambda: complete(chat, attribution(), user("x"), temperature=float("nan")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert failed.field_violations == {"request.temperature": "must be a finite number"}


def test_no_messages_and_no_request_are_invalid(chat: chat_pb2_grpc.ChatServiceStub) -> None:
    failed = call_fails(
        lambda: chat.Complete(chat_pb2.CompleteRequest(attribution=attribution()), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert {"request", "request.model", "request.messages"} <= set(failed.field_violations)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (401, grpc.StatusCode.FAILED_PRECONDITION),
        (403, grpc.StatusCode.PERMISSION_DENIED),
        (404, grpc.StatusCode.NOT_FOUND),
        (409, grpc.StatusCode.ABORTED),
        (422, grpc.StatusCode.INVALID_ARGUMENT),
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (500, grpc.StatusCode.UNAVAILABLE),
        (502, grpc.StatusCode.UNAVAILABLE),
        (503, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_upstream_http_errors_map_to_statuses_and_store_nothing(
    status: int,
    code: grpc.StatusCode,
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    existing = complete(chat, who, user("before"))
    upstream.script(
        {
            "fail": {
                "status": status,
                "message": f"upstream says {status}",
                "type": "invalid_request_error",
                "code": "some_code",
                "param": "temperature",
            }
        }
    )
    failed = call_fails(lambda: complete(chat, who, user("fails")), code)
    assert f"upstream says {status}" in failed.message
    assert failed.reason == "UPSTREAM_ERROR"
    assert failed.metadata["upstream_status"] == str(status)
    assert failed.metadata["upstream_message"] == f"upstream says {status}"
    assert failed.metadata["upstream_type"] == "invalid_request_error"
    assert failed.metadata["upstream_code"] == "some_code"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert failed.field_violations == {"request.temperature": f"upstream says {status}"}
    _session_is_untouched(sessions, existing.session.id, 2)


def test_a_new_session_is_not_created_by_a_failed_call(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, chosen = attribution(), new_id()
    upstream.script({"fail": {"status": 500, "message": "boom"}})
    call_fails(
        lambda: complete(chat, who, user("x"), session_id=chosen), grpc.StatusCode.UNAVAILABLE
    )
    call_fails(
        lambda: sessions.Get(session_pb2.GetRequest(session_id=chosen)), grpc.StatusCode.NOT_FOUND
    )
    upstream.script({"fail": {"status": 500, "message": "boom"}})
    call_fails(lambda: complete(chat, who, user("x")), grpc.StatusCode.UNAVAILABLE)
    listed = sessions.List(session_pb2.ListRequest(attribution=who)).sessions
    assert list(listed) == []


def test_rate_limits_carry_retry_info(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    upstream.script({"fail": {"status": 429, "message": "slow down", "retry_after": 2}})
    failed = call_fails(
        lambda: complete(chat, attribution(), user("x")), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    retry = failed.detail(error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 2
    upstream.script({"fail": {"status": 429, "message": "slow down", "retry_after_ms": 1500}})
    failed = call_fails(
        lambda: complete(chat, attribution(), user("x")), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert failed.detail(error_details_pb2.RetryInfo).retry_delay.ToMilliseconds() == 1500


def test_a_stalled_upstream_ends_at_the_callers_deadline(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    existing = complete(chat, who, user("before"))
    upstream.script({"stall": True})
    call_fails(
        lambda: complete(chat, who, user("never answered"), timeout=1),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    _session_is_untouched(sessions, existing.session.id, 2)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable_upstream_server(tmp_path: object, database_url: str) -> Iterator[InProcessServer]:
    settings = make_settings(
        database_url, upstream_base_url=f"http://127.0.0.1:{_closed_port()}/v1"
    )
    running = InProcessServer(settings)
    yield running
    running.close()


def test_an_unreachable_upstream_is_unavailable_not_a_database_problem(
    unreachable_upstream_server: InProcessServer,
) -> None:
    with grpc.insecure_channel(unreachable_upstream_server.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        failed = call_fails(
            lambda: complete(chat, attribution(), user("x")), grpc.StatusCode.UNAVAILABLE
        )
    assert failed.reason == "UPSTREAM_UNREACHABLE"
    assert "cannot reach the upstream" in failed.message


def test_bad_bytes_are_invalid_argument(channel: grpc.Channel) -> None:
    raw = channel.unary_unary(
        "/memori.v1.ChatService/Complete", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\x0a\x05\xff\xfe\xfd\xfc\xfb", timeout=10)
    assert CallFailed(caught.value).code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_request_built_by_the_helper_is_valid() -> None:
    assert chat_request(user("x")).messages[0].content == "x"
