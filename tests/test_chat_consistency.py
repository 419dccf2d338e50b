"""Concurrency, idempotent retries and cancellation: nothing lost, nothing half-stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread
from tests.chat_calls import (
    chat_request,
    complete,
    open_stream,
    stored,
    stream,
    streamed_text,
    user,
)
from tests.factories import attribution, new_id
from tests.rpc_errors import call_fails

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off


def test_fifty_concurrent_calls_on_one_session_store_one_hundred_messages_in_order(
    chat: chat_pb2_grpc.ChatServiceStub, sessions: session_pb2_grpc.SessionServiceStub
) -> None:
    who, session_id = attribution(), new_id()
    with ThreadPoolExecutor(50) as pool:
        answers = list(
            pool.map(
                lambda n: complete(chat, who, user(f"message {n}"), session_id=session_id),
                range(50),
            )
        )
    assert {answer.session.id for answer in answers} == {session_id}
    history = stored(sessions, session_id)
    assert [sequence for sequence, _, _ in history] == list(range(1, 101))
    # Each turn stays whole: every user message is followed by its own reply.
    for (_, role, text), (_, reply_role, reply) in zip(history[::2], history[1::2], strict=True):
        assert (role, reply_role) == ("user", "assistant")
        assert reply == f"echo: {text}"
    assert sorted(text for _, role, text in history if role == "user") == sorted(
        f"message {n}" for n in range(50)
    )


def test_concurrent_first_calls_of_an_attribution_share_one_session(
    chat: chat_pb2_grpc.ChatServiceStub, sessions: session_pb2_grpc.SessionServiceStub
) -> None:
    who = attribution()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: complete(chat, who, user(f"hello {n}")), range(8)))
    listed = sessions.List(session_pb2.ListRequest(attribution=who)).sessions
    assert len({answer.session.id for answer in answers}) == 1
    assert [session.message_count for session in listed] == [16]


def test_a_retry_with_the_same_request_id_replays_without_a_second_upstream_call(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, request_id = attribution(), new_id()
    first = complete(chat, who, user("pay the invoice"), request_id=request_id)
    again = complete(chat, who, user("pay the invoice"), request_id=request_id)
    assert len(upstream.requests) == 1
    assert again.replayed
    assert not first.replayed
    assert again.completion == first.completion
    assert again.completion_json == first.completion_json
    assert again.session.id == first.session.id
    assert len(stored(sessions, first.session.id)) == 2


def test_a_retry_arriving_while_the_first_call_runs_waits_for_its_result(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, request_id = attribution(), new_id()
    upstream.script({"delay": 0.5})
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(complete, chat, who, user("slow one"), request_id=request_id)
        upstream.wait_for_requests(1)
        second = pool.submit(complete, chat, who, user("slow one"), request_id=request_id)
        results = [first.result(), second.result()]
    assert len(upstream.requests) == 1
    assert results[0].completion_json == results[1].completion_json
    assert [r.replayed for r in results] == [False, True]
    assert len(stored(sessions, results[0].session.id)) == 2


def test_a_request_id_reused_for_another_request_is_refused(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    who, request_id = attribution(), new_id()
    complete(chat, who, user("one thing"), request_id=request_id)
    failed = call_fails(
        lambda: complete(chat, who, user("another thing"), request_id=request_id),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert failed.reason == "REQUEST_ID_REUSED"
    assert len(upstream.requests) == 1


def test_a_failed_call_frees_its_request_id_for_the_retry(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, request_id = attribution(), new_id()
    upstream.script({"fail": {"status": 503, "message": "overloaded"}})
    call_fails(
        lambda: complete(chat, who, user("retry me"), request_id=request_id),
        grpc.StatusCode.UNAVAILABLE,
    )
    answer = complete(chat, who, user("retry me"), request_id=request_id)
    assert not answer.replayed
    assert len(upstream.requests) == 2
    assert len(stored(sessions, answer.session.id)) == 2


def test_a_call_refused_while_reading_its_session_frees_its_request_id(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    """The claim and the session's context are read together: a session the call may not
    use fails the call after its claim was made, and the claim is given back, so the
    same request (the retry of a client that gave up too early) is refused again at once
    instead of waiting for the claim's lease."""
    owner, stranger, request_id = attribution(), attribution(), new_id()
    theirs = complete(chat, owner, user("mine")).session.id
    for _ in range(2):
        started = time.monotonic()
        call_fails(
            lambda: complete(
                chat,
                stranger,
                user("theirs?"),
                session_id=theirs,
                request_id=request_id,
                timeout=10,
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert time.monotonic() - started < 5, "the retry waited for the first call's claim"
    assert len(upstream.requests) == 1


def test_a_finished_stream_is_replayed_for_its_request_id(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    who, request_id = attribution(), new_id()
    first = stream(chat, who, user("stream it"), request_id=request_id)
    again = stream(chat, who, user("stream it"), request_id=request_id)
    assert len(upstream.requests) == 1
    # The record keeps the assembled completion, not every chunk: the replay says the same
    # thing (text, finish reason, ids) in fewer chunks.
    assert streamed_text(again) == streamed_text(first) == "echo: stream it"
    finish = [c.finish_reason for r in again for c in r.chunk.choices if c.finish_reason]
    assert finish == ["stop"]
    assert {r.chunk.id for r in again[1:]} == {r.chunk.id for r in first[1:]}
    assert all(json.loads(r.chunk_json)["object"] == "chat.completion.chunk" for r in again[1:])
    assert all(r.replayed for r in again)
    assert again[0].session.id == first[0].session.id
    # A stream's request id is not a unary call's.
    call_fails(
        lambda: complete(chat, who, user("stream it"), request_id=request_id),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_a_cancelled_call_stores_nothing_and_cancels_the_upstream_request(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    existing = complete(chat, who, user("before"))
    upstream.script({"stall": True})
    request_id = new_id()
    future = chat.Complete.future(
        chat_pb2.CompleteRequest(
            attribution=who, request=chat_request(user("cancel me")), request_id=request_id
        ),
        timeout=30,
    )
    upstream.wait_for_requests(2)
    abandoned = upstream.upstream.abandoned_requests
    future.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped
    _wait_until(lambda: upstream.upstream.abandoned_requests == abandoned + 1)
    session = sessions.Get(session_pb2.GetRequest(session_id=existing.session.id)).session
    assert session.message_count == 2
    # The request id was released: a retry runs the request.
    answer = complete(chat, who, user("cancel me"), request_id=request_id)
    assert not answer.replayed


def test_a_stream_cancelled_midway_stores_nothing(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who, session_id = attribution(), new_id()
    complete(chat, who, user("before"), session_id=session_id)
    upstream.script({"reply": {"content": " ".join(["word"] * 400)}, "chunk_delay": 0.01})
    call = open_stream(chat, who, user("long story"), session_id=session_id)
    for received, _ in enumerate(call, start=1):
        if received == 5:
            call.cancel()  # type: ignore[no-untyped-call]
            break
    time.sleep(0.3)
    history = stored(sessions, session_id)
    assert len(history) == 2, json.dumps(history)


def test_concurrent_streams_and_unary_calls_keep_turns_whole(
    chat: chat_pb2_grpc.ChatServiceStub, sessions: session_pb2_grpc.SessionServiceStub
) -> None:
    who, session_id = attribution(), new_id()
    barrier = threading.Barrier(10)

    def one(n: int) -> None:
        barrier.wait()
        if n % 2:
            stream(chat, who, user(f"s{n}"), session_id=session_id)
        else:
            complete(chat, who, user(f"u{n}"), session_id=session_id)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(one, range(10)))
    history = stored(sessions, session_id)
    assert len(history) == 20
    for (_, _, text), (_, _, reply) in zip(history[::2], history[1::2], strict=True):
        assert reply == f"echo: {text}"
