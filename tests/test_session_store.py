"""SessionStore behaviours that RPCs alone cannot reach yet: tenants, concurrency, idleness."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from memori_server.domain import Attribution
from memori_server.errors import AttributionMismatch, SessionNotFound
from memori_server.storage.records import NewMessage
from memori_server.storage.session_store import SessionStore

from tests.conftest import make_settings
from tests.factories import new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off


def store_of(server: InProcessServer) -> SessionStore:
    assert server.server.store is not None
    return server.server.store


def test_sessions_are_invisible_across_tenants(server: InProcessServer) -> None:
    store = store_of(server)
    who = Attribution(entity_id=f"user-{new_id()}", process_id="agent")
    session_id = new_id()
    server.run(store.set("tenant-a", who, session_id))
    with pytest.raises(SessionNotFound):
        server.run(store.get("tenant-b", session_id))
    # Another tenant using the same id gets a session of its own, not a mismatch error.
    stranger = Attribution(entity_id="someone-else", process_id="")
    _, created = server.run(store.set("tenant-b", stranger, session_id))
    assert created
    server.run(store.append_messages("tenant-b", session_id, [NewMessage("user", "hi")]))
    messages, _ = server.run(
        store.list_messages("tenant-a", session_id, None, after_sequence=0, limit=10)
    )
    assert messages == []
    server.run(store.delete("tenant-b", session_id))
    assert server.run(store.get("tenant-a", session_id)).attribution == who
    with pytest.raises(AttributionMismatch):
        server.run(store.set("tenant-a", stranger, session_id))


def test_concurrent_appends_keep_a_gap_free_total_order(server: InProcessServer) -> None:
    store = store_of(server)
    who = Attribution(entity_id=f"user-{new_id()}", process_id="agent")
    session = server.run(store.reset("default", who))

    async def turns() -> None:
        await asyncio.gather(
            *(
                store.append_messages(
                    "default",
                    session.id,
                    [NewMessage("user", f"question {i}"), NewMessage("assistant", f"answer {i}")],
                )
                for i in range(50)
            )
        )

    server.run(turns(), timeout=120)
    stored, more = server.run(
        store.list_messages("default", session.id, who, after_sequence=0, limit=1000)
    )
    assert not more
    assert [m.sequence for m in stored] == list(range(1, 101))
    for question, answer in zip(stored[::2], stored[1::2], strict=True):
        assert question.message.content is not None
        turn = question.message.content.removeprefix("question ")
        assert answer.message.content == f"answer {turn}"  # a turn is never interleaved
    assert server.run(store.get("default", session.id)).message_count == 100


def test_current_session_expires_after_the_idle_window(database_url: str) -> None:
    idle = InProcessServer(make_settings(database_url, session_idle_timeout=1.0))
    try:
        with grpc.insecure_channel(idle.target) as channel:
            stub = SessionServiceStub(channel)
            who = session_pb2.ResetRequest(
                attribution=common_pb2.Attribution(entity_id=f"user-{new_id()}", process_id="p")
            )
            session = stub.Reset(who).session
            assert stub.Get(session_pb2.GetRequest(attribution=who.attribution)).session.id == (
                session.id
            )
            time.sleep(1.3)
            failed = call_fails(
                lambda: stub.Get(session_pb2.GetRequest(attribution=who.attribution)),
                grpc.StatusCode.NOT_FOUND,
            )
            assert "last 1 s" in failed.message
            # By id it is still there, and Set makes it current and active again.
            stub.Set(session_pb2.SetRequest(attribution=who.attribution, session_id=session.id))
            assert stub.Get(session_pb2.GetRequest(attribution=who.attribution)).session.id == (
                session.id
            )
    finally:
        idle.close()


def test_many_concurrent_writers_all_succeed(channel: grpc.Channel) -> None:
    """SQLite queues writers (BEGIN IMMEDIATE + busy timeout) instead of failing them."""
    stub = SessionServiceStub(channel)
    who = common_pb2.Attribution(entity_id=f"user-{new_id()}", process_id="load")

    def reset_and_set(index: int) -> str:
        created = stub.Reset(session_pb2.ResetRequest(attribution=who)).session.id
        if index % 2:
            stub.Set(session_pb2.SetRequest(attribution=who, session_id=created))
        return created

    with ThreadPoolExecutor(16) as pool:
        ids = set(pool.map(reset_and_set, range(200)))
    assert len(ids) == 200
    listed: set[str] = set()
    token = ""
    while True:
        page = stub.List(session_pb2.ListRequest(attribution=who, page_size=1000, page_token=token))
        listed |= {session.id for session in page.sessions}
        token = page.next_page_token
        if not token:
            break
    assert listed == ids
