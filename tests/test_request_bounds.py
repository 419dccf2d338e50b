"""Bounded requests: a cap on messages and choices, resent history found in linear time, and
large calls that work (off the event loop) without changing what is sent or stored."""

from __future__ import annotations

import random

import grpc
import pytest
from memori_proto.v1 import chat_pb2_grpc, session_pb2, session_pb2_grpc
from memori_server.chat.history import longest_overlap, resent_count
from memori_server.storage.records import HistoryMessage, NewMessage, encode_message

from standin_upstream import StandinThread
from tests.chat_calls import complete, message, sent_messages, stream, user
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _naive_overlap(tail: list[int], head: list[int]) -> int:
    for size in range(min(len(tail), len(head)), 0, -1):
        if tail[len(tail) - size :] == head[:size]:
            return size
    return 0


def test_longest_overlap_agrees_with_the_quadratic_definition() -> None:
    rng = random.Random(20261129)
    for _ in range(5000):
        tail = [rng.randint(0, 2) for _ in range(rng.randint(0, 12))]
        head = [rng.randint(0, 2) for _ in range(rng.randint(0, 12))]
        assert longest_overlap(tail, head) == _naive_overlap(tail, head), (tail, head)


def _resent(stored: list[dict[str, str]], conversation: list[dict[str, str]]) -> int:
    history = [HistoryMessage(m["role"], encode_message(m), 1) for m in stored]
    return resent_count(history, [encode_message(m) for m in conversation])


def test_resent_count_finds_exactly_the_repeated_run() -> None:
    stored = [{"role": "user", "content": str(n)} for n in range(6)]
    assert _resent(stored, [*stored[2:], {"role": "user", "content": "new"}]) == 4
    # A run that is not at the end of the stored history is new to the session.
    assert _resent(stored, stored[1:3]) == 0
    # Key order does not matter: messages compare as JSON values.
    swapped = [{"content": m["content"], "role": m["role"]} for m in stored]
    assert _resent(stored, swapped) == 6


def test_more_messages_than_the_cap_are_invalid_argument(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    too_many = [user(f"m{n}") for n in range(2049)]
    failed = call_fails(lambda: complete(chat, attribution(), *too_many), INVALID)
    assert "at most 2048" in failed.field_violations["request.messages"]
    assert upstream.requests == []


@pytest.mark.parametrize("choices", [0, 17, -1, 2**40])
def test_n_beyond_the_cap_is_invalid_argument(
    chat: chat_pb2_grpc.ChatServiceStub, choices: int
) -> None:
    failed = call_fails(lambda: complete(chat, attribution(), user("x"), n=choices), INVALID)
    assert "1 to 16" in failed.field_violations["request.n"]


def _seed(
    server: InProcessServer, sessions: session_pb2_grpc.SessionServiceStub, count: int
) -> tuple[str, list[NewMessage]]:
    """A session of `count` alternating user/assistant messages, stored directly."""
    who = attribution()
    session_id = new_id()
    sessions.Set(session_pb2.SetRequest(attribution=who, session_id=session_id))
    history = [
        NewMessage(role="user" if n % 2 == 0 else "assistant", content=f"turn {n}", token_count=5)
        for n in range(count)
    ]
    assert server.server.store is not None
    server.run(server.server.store.append_messages("default", session_id, history))
    return session_id, history


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
def test_a_full_history_resend_of_2000_messages_stores_only_the_new_turn(
    server: InProcessServer,
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
    streamed: bool,
) -> None:
    session_id, history = _seed(server, sessions, 2000)
    who = sessions.Get(session_pb2.GetRequest(session_id=session_id)).session.attribution
    resent = [message(item.role, item.content) for item in history]
    call = stream if streamed else complete
    call(chat, who, *resent, user("and now?"), session_id=session_id, timeout=60)
    sent = sent_messages(upstream)
    assert sent[-1] == {"role": "user", "content": "and now?"}
    assert len(sent) < 2000, "the history is budgeted, not sent twice"
    assert [m["content"] for m in sent[:-1]] == [f"turn {n}" for n in range(2001 - len(sent), 2000)]
    count = sessions.Get(session_pb2.GetRequest(session_id=session_id)).session.message_count
    assert count == 2002
