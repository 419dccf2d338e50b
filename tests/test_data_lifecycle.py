"""What is kept and for how long: session retention, request-id records (lean, bounded,
expiring), SQLite's durability settings, replies too large to send, claims at shutdown."""

from __future__ import annotations

import functools
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from memori_proto.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    entity_pb2,
    entity_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)
from memori_server.config import Settings
from memori_server.housekeeping import Round
from memori_server.metrics import MESSAGES_EXPIRED, SESSIONS_EXPIRED
from sqlalchemy import text

from standin_upstream import StandinThread
from tests.chat_calls import chat_request, complete, stream, user
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess


def _server(database_url: str, upstream: StandinThread, **settings: object) -> InProcessServer:
    return InProcessServer(
        make_settings(database_url, upstream_base_url=upstream.base_url, **settings)
    )


@pytest.fixture
def retaining(fresh_database_url: str, upstream: StandinThread) -> Iterator[InProcessServer]:
    server = _server(
        fresh_database_url,
        upstream,
        session_retention="1",
        idempotency_retention="1",
        housekeeping_interval=3600,  # the test runs the rounds itself
    )
    yield server
    server.close()


def test_sessions_idle_past_the_retention_are_deleted_and_active_ones_kept(
    retaining: InProcessServer,
) -> None:
    with grpc.insecure_channel(retaining.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        idle = [complete(chat, attribution(), user(f"old {n}")).session.id for n in range(3)]
        time.sleep(1.2)
        active = complete(chat, attribution(), user("new")).session.id
        expired_before = SESSIONS_EXPIRED._value.get()
        messages_before = MESSAGES_EXPIRED._value.get()
        done = retaining.run(retaining.server.housekeeping.run_once())
        assert (done.sessions, done.messages) == (3, 6)
        assert SESSIONS_EXPIRED._value.get() - expired_before == 3
        assert MESSAGES_EXPIRED._value.get() - messages_before == 6
        for session_id in idle:
            request = session_pb2.GetRequest(session_id=session_id)
            call_fails(functools.partial(sessions.Get, request), grpc.StatusCode.NOT_FOUND)
        assert sessions.Get(session_pb2.GetRequest(session_id=active)).session.message_count == 2
        assert retaining.run(retaining.server.housekeeping.run_once()) == Round()


def test_request_ids_are_forgotten_after_their_retention(
    retaining: InProcessServer, upstream: StandinThread
) -> None:
    with grpc.insecure_channel(retaining.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        who, request_id = attribution(), new_id()
        first = complete(chat, who, user("once"), request_id=request_id)
        assert complete(chat, who, user("once"), request_id=request_id).replayed
        time.sleep(1.2)
        done = retaining.run(retaining.server.housekeeping.run_once())
        assert done.requests >= 1
        # The session is younger than the retention at its last turn... but idle 1.2 s too:
        # retention deleted it along, so this is a new call in a new session.
        again = complete(chat, who, user("once"), request_id=request_id)
        assert not again.replayed
        assert again.session.id != first.session.id


def _record_size(server: InProcessServer, request_id: str) -> int:
    assert server.server.store is not None
    engine = server.server.store._db.engine
    with engine.connect() as connection:
        response = connection.execute(
            text("SELECT response FROM completion_requests WHERE request_id = :r"),
            {"r": request_id},
        ).scalar_one()
    return len(response.encode())


def test_a_streams_record_keeps_the_assembled_completion_not_every_chunk(
    server: InProcessServer, chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    words = " ".join(f"w{n}" for n in range(2000))
    upstream.script({"reply": {"content": words}})
    who, request_id = attribution(), new_id()
    responses = stream(chat, who, user("long"), request_id=request_id)
    chunks = sum(len(r.chunk_json.encode()) for r in responses[1:])
    kept = _record_size(server, request_id)
    assert kept < len(words) + 1000, "about the reply itself"
    assert kept * 10 < chunks, f"record {kept} bytes against {chunks} bytes of chunks"
    replay = stream(chat, who, user("long"), request_id=request_id)
    assert all(r.replayed for r in replay)
    assert "".join(c.delta.content for r in replay[1:] for c in r.chunk.choices).endswith("w1999")


@pytest.fixture
def small_messages(database_url: str, upstream: StandinThread) -> Iterator[InProcessServer]:
    server = _server(database_url, upstream, max_message_bytes=64 * 1024)
    yield server
    server.close()


def test_a_reply_too_large_to_send_is_refused_and_stores_nothing(
    small_messages: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    with grpc.insecure_channel(
        small_messages.target, options=[("grpc.max_receive_message_length", 1 << 24)]
    ) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        who, session_id, request_id = attribution(), new_id(), new_id()
        upstream.script({"reply": {"content": "x" * 100_000}})
        failed = call_fails(
            lambda: complete(chat, who, user("big"), session_id=session_id, request_id=request_id),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert failed.reason == "REPLY_TOO_LARGE"
        call_fails(
            lambda: sessions.Get(session_pb2.GetRequest(session_id=session_id)),
            grpc.StatusCode.NOT_FOUND,
        )
        # The request id was freed: the retry runs (and fits now).
        time.sleep(0.1)
        answer = complete(chat, who, user("big"), session_id=session_id, request_id=request_id)
        assert not answer.replayed
        assert answer.session.message_count == 2


@pytest.mark.parametrize(("setting", "expected"), [(None, 2), ("normal", 1)])
def test_sqlite_syncs_every_commit_by_default_and_overwrites_deleted_content(
    tmp_path: Path, setting: str | None, expected: int
) -> None:
    overrides = {} if setting is None else {"sqlite_synchronous": setting}
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}", **overrides)
    server = InProcessServer(settings)
    try:
        assert server.server.store is not None
        engine = server.server.store._db.engine
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == expected
            assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    finally:
        server.close()


def test_erased_text_does_not_linger_in_the_sqlite_file(
    tmp_path: Path, upstream: StandinThread
) -> None:
    database = tmp_path / "m.db"
    server = _server(f"sqlite:///{database}", upstream)
    secret = "the-secret-" + new_id()
    try:
        with grpc.insecure_channel(server.target) as channel:
            chat = chat_pb2_grpc.ChatServiceStub(channel)
            who = attribution()
            complete(chat, who, user(secret))
            entity_pb2_grpc.EntityServiceStub(channel).Erase(
                entity_pb2.EraseRequest(entity_id=who.entity_id)
            )
    finally:
        server.close()
    checkpoint = sqlite3.connect(database)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    assert secret.encode() not in database.read_bytes()


def test_shutdown_frees_the_request_ids_of_the_calls_it_cancels(tmp_path: Path) -> None:
    """A call still running when the grace ends is cancelled; its request id is released
    before the server closes, so the retry (to a new process) runs at once."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with StandinProcess() as standin:
        args = ("--upstream-base-url", standin.base_url, "--shutdown-grace", "0.5")
        server = ServerProcess(url, *args)
        server.wait_ready()
        standin.script({"stall": True})
        who, request_id = attribution(), new_id()
        channel = grpc.insecure_channel(server.target)
        call = chat_pb2_grpc.ChatServiceStub(channel).Complete.future(
            chat_pb2.CompleteRequest(
                attribution=who, request_id=request_id, request=chat_request(user("slow"))
            ),
            timeout=60,
        )
        standin.wait_for_requests(1)
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        with pytest.raises(grpc.RpcError):
            call.result()
        channel.close()
        with (
            ServerProcess(url, "--upstream-base-url", standin.base_url) as again,
            grpc.insecure_channel(again.target) as retry_channel,
        ):
            started = time.monotonic()
            reply = complete(
                chat_pb2_grpc.ChatServiceStub(retry_channel),
                who,
                user("slow"),
                request_id=request_id,
            )
            assert time.monotonic() - started < 5, "the retry waited for a stranded claim"
            assert not reply.replayed


def test_retention_settings_take_units_and_refuse_nonsense() -> None:
    assert Settings(session_retention="30d").session_retention == 30 * 86400
    assert Settings(idempotency_retention="90m").idempotency_retention == 5400
    assert Settings(session_retention="off").session_retention is None
    for bad in ("soon", "-1", "0"):
        with pytest.raises(ValueError, match="retention"):
            Settings(session_retention=bad)
