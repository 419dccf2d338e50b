"""Nothing a client sends yields UNKNOWN or INTERNAL, or stops the server answering."""

from __future__ import annotations

import random
import string

import grpc
import pytest
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub

from tests.rpc_errors import CallFailed

SERVICE = "/memori.v1.SessionService/"
METHODS = ["Reset", "Set", "Get", "List", "Delete", "ListMessages"]
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
BAD_UTF8 = b"\xff\xfe\xfd"
# A string field of each request holding invalid UTF-8 (proto3 strings must be UTF-8).
BAD_STRING_FIELD = {
    "Reset": b"\x0a\x05\x0a\x03" + BAD_UTF8,  # attribution.entity_id
    "Set": b"\x12\x03" + BAD_UTF8,  # session_id
    "Get": b"\x0a\x03" + BAD_UTF8,  # session_id
    "List": b"\x1a\x03" + BAD_UTF8,  # page_token
    "Delete": b"\x0a\x03" + BAD_UTF8,  # session_id
    "ListMessages": b"\x12\x05\x12\x03" + BAD_UTF8,  # attribution.process_id
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff", b"\x0a\x05ab", None],
    ids=["garbage", "truncated", "bad-utf8-in-string"],
)
def test_unparseable_requests_are_invalid_argument(
    channel: grpc.Channel, method: str, payload: bytes | None
) -> None:
    call = channel.unary_unary(
        SERVICE + method, request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError) as caught:
        call(BAD_STRING_FIELD[method] if payload is None else payload)
    failed = CallFailed(caught.value)
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT, failed.message
    assert "request" in failed.field_violations


def _text(rng: random.Random) -> str:
    alphabet = string.printable + "é€😀\x00\u202e"
    kind = rng.randrange(5)
    if kind == 0:
        return ""
    if kind == 1:
        return rng.choice(
            ["00000000-0000-4000-8000-000000000000", "6F1C2D3E-4B5A-4C6D-8E7F-8091A2B3C4D5"]
        )
    length = rng.choice([1, 36, 99, 100, 101, 5000])
    return "".join(rng.choice(alphabet) for _ in range(length))


def _random_call(sessions: SessionServiceStub, rng: random.Random) -> None:
    who = common_pb2.Attribution(entity_id=_text(rng), process_id=_text(rng))
    method = rng.choice(METHODS)
    if method == "Reset":
        sessions.Reset(session_pb2.ResetRequest(attribution=who))
    elif method == "Set":
        sessions.Set(session_pb2.SetRequest(attribution=who, session_id=_text(rng)))
    elif method == "Get":
        sessions.Get(session_pb2.GetRequest(session_id=_text(rng), attribution=who))
    elif method == "List":
        request = session_pb2.ListRequest(
            attribution=who, page_size=rng.randint(-5, 5000), page_token=_text(rng)
        )
        if rng.random() < 0.5:
            request.min_update_time.seconds = rng.randint(-(10**12), 10**12)
            request.min_update_time.nanos = rng.randint(-(10**9), 10**9)
        if rng.random() < 0.5:
            request.active_within.seconds = rng.randint(-(10**12), 10**12)
            request.active_within.nanos = rng.randint(-(10**9), 10**9)
        sessions.List(request)
    elif method == "Delete":
        sessions.Delete(session_pb2.DeleteRequest(session_id=_text(rng)))
    else:
        sessions.ListMessages(
            session_pb2.ListMessagesRequest(
                session_id=_text(rng), page_size=rng.randint(-5, 5000), page_token=_text(rng)
            )
        )


def test_random_requests_never_fail_as_internal_or_unknown(
    sessions: SessionServiceStub,
) -> None:
    rng = random.Random(20261128)
    for _ in range(300):
        try:
            _random_call(sessions, rng)
        except grpc.RpcError as error:
            failed = CallFailed(error)
            assert failed.code not in NEVER, failed.message
    # Still healthy afterwards.
    assert sessions.Reset(
        session_pb2.ResetRequest(attribution=common_pb2.Attribution(entity_id="after-fuzz"))
    ).session.id


def test_oversize_messages_are_refused_with_a_clear_status(
    sessions: SessionServiceStub,
) -> None:
    """gRPC itself refuses a message above --max-message-bytes (4 MiB) before any handler."""
    huge = common_pb2.Attribution(entity_id="x" * (5 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as caught:
        sessions.Reset(session_pb2.ResetRequest(attribution=huge))
    failed = CallFailed(caught.value)
    assert failed.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in failed.message
