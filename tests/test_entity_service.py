"""EntityService: erase everything of one entity (and nothing else), export it in order."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from memori_client import Memori
from memori_proto.v1 import (
    chat_pb2_grpc,
    common_pb2,
    entity_pb2,
    entity_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)
from memori_server.storage.records import NewMessage

from standin_upstream import StandinThread
from tests.chat_calls import complete, user
from tests.client_support import ask, sync_client
from tests.conftest import make_settings
from tests.factories import new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

ACME = "acme-key-3f2504e04f8911d39a0c0305e82c3301"
GLOBEX = "globex-key-9b2d1f4e6a8c0e2f4a6c8e0a2c4e6a8c"


def bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture(scope="module")
def keyed(database_url: str, upstream: StandinThread) -> Iterator[InProcessServer]:
    server = InProcessServer(
        make_settings(
            database_url,
            upstream_base_url=upstream.base_url,
            api_keys=f"acme={ACME},globex={GLOBEX}",
        )
    )
    yield server
    server.close()


class Tenant:
    """The three services as one tenant sees them."""

    def __init__(self, channel: grpc.Channel, key: str) -> None:
        self.metadata = bearer(key)
        self.chat = chat_pb2_grpc.ChatServiceStub(channel)
        self.sessions = session_pb2_grpc.SessionServiceStub(channel)
        self.entities = entity_pb2_grpc.EntityServiceStub(channel)

    def turn(self, entity: str, process: str, text: str, session_id: str = "") -> str:
        who = common_pb2.Attribution(entity_id=entity, process_id=process)
        reply = complete(self.chat, who, user(text), session_id=session_id, metadata=self.metadata)
        return str(reply.session.id)

    def erase(self, entity: str) -> entity_pb2.EraseResponse:
        reply: entity_pb2.EraseResponse = self.entities.Erase(
            entity_pb2.EraseRequest(entity_id=entity), metadata=self.metadata
        )
        return reply

    def export(self, entity: str) -> list[entity_pb2.ExportResponse]:
        return list(
            self.entities.Export(entity_pb2.ExportRequest(entity_id=entity), metadata=self.metadata)
        )

    def message_count(self, session_id: str) -> int:
        reply = self.sessions.Get(
            session_pb2.GetRequest(session_id=session_id), metadata=self.metadata
        )
        return int(reply.session.message_count)


@pytest.fixture
def tenants(keyed: InProcessServer) -> Iterator[tuple[Tenant, Tenant]]:
    with grpc.insecure_channel(keyed.target) as channel:
        yield Tenant(channel, ACME), Tenant(channel, GLOBEX)


def test_erase_deletes_every_process_of_the_entity_and_nothing_else(
    tenants: tuple[Tenant, Tenant],
) -> None:
    acme, globex = tenants
    entity, neighbour = f"user-{new_id()}", f"user-{new_id()}"
    gone = [acme.turn(entity, process, "forget me") for process in ("support", "sales", "")]
    gone.append(acme.turn(entity, "support", "a second session", new_id()))
    kept_neighbour = acme.turn(neighbour, "support", "keep me")
    kept_other_tenant = globex.turn(entity, "support", "keep me too")
    erased = acme.erase(entity)
    assert (erased.deleted_session_count, erased.deleted_message_count) == (4, 8)
    for session_id in gone:
        call_fails(functools.partial(acme.message_count, session_id), grpc.StatusCode.NOT_FOUND)
    assert acme.export(entity) == []
    assert acme.message_count(kept_neighbour) == 2
    assert globex.message_count(kept_other_tenant) == 2
    assert [page.session.id for page in globex.export(entity)] == [kept_other_tenant]
    again = acme.erase(entity)  # idempotent
    assert (again.deleted_session_count, again.deleted_message_count) == (0, 0)
    # The entity starts afresh: a new call after the erasure is a new session.
    assert acme.turn(entity, "support", "hello again") not in gone


def test_export_streams_sessions_in_creation_order_with_every_message_in_pages(
    keyed: InProcessServer, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, _ = tenants
    entity = f"user-{new_id()}"
    first = acme.turn(entity, "support", "first")
    long_session = new_id()
    acme.sessions.Set(
        session_pb2.SetRequest(
            attribution=common_pb2.Attribution(entity_id=entity, process_id="bulk"),
            session_id=long_session,
        ),
        metadata=acme.metadata,
    )
    assert keyed.server.store is not None
    keyed.run(
        keyed.server.store.append_messages(
            "acme", long_session, [NewMessage("user", f"m{n}") for n in range(1203)]
        )
    )
    empty = new_id()
    acme.sessions.Set(
        session_pb2.SetRequest(
            attribution=common_pb2.Attribution(entity_id=entity, process_id="empty"),
            session_id=empty,
        ),
        metadata=acme.metadata,
    )
    pages = acme.export(entity)
    assert [page.session.id for page in pages] == [
        first,
        long_session,
        long_session,
        long_session,
        empty,
    ]
    assert [len(page.messages) for page in pages] == [2, 500, 500, 203, 0]
    bulk = [m for page in pages if page.session.id == long_session for m in page.messages]
    assert [m.sequence for m in bulk] == list(range(1, 1204))
    assert bulk[-1].message.content == "m1202"


def test_invalid_entities_are_invalid_argument(tenants: tuple[Tenant, Tenant]) -> None:
    acme, _ = tenants
    for bad in ("", "x" * 101, "tab\there"):
        failed = call_fails(functools.partial(acme.erase, bad), grpc.StatusCode.INVALID_ARGUMENT)
        assert "entity_id" in failed.field_violations
        call_fails(functools.partial(acme.export, bad), grpc.StatusCode.INVALID_ARGUMENT)


def test_entity_calls_need_a_key(keyed: InProcessServer) -> None:
    with grpc.insecure_channel(keyed.target) as channel:
        stub = entity_pb2_grpc.EntityServiceStub(channel)
        call_fails(
            lambda: stub.Erase(entity_pb2.EraseRequest(entity_id="u")),
            grpc.StatusCode.UNAUTHENTICATED,
        )


def test_erase_under_concurrent_completions_leaves_no_turn_begun_before_it(
    keyed: InProcessServer, tenants: tuple[Tenant, Tenant], upstream: StandinThread
) -> None:
    """Callers keep talking as the entity (new sessions and a long one) while it is erased:
    afterwards nothing of a call that began before the erasure is stored, and every turn
    that is stored is whole."""
    acme, _ = tenants
    entity = f"user-{new_id()}"
    upstream.set_delay(0.02)
    started: dict[str, float] = {}
    stop = threading.Event()
    shared = new_id()

    def talk(process: str, session_id: str) -> None:
        turn = 0
        while not stop.is_set():
            text = f"{process} {turn}"
            started[text] = time.monotonic()
            with contextlib.suppress(grpc.RpcError):  # refused (erased meanwhile): no trace
                acme.turn(entity, process, text, session_id if turn % 2 else "")
            turn += 1

    threads = [
        threading.Thread(target=talk, args=(f"p{n}", shared if n == 0 else new_id()))
        for n in range(6)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        erase_started = time.monotonic()
        erased = acme.erase(entity)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        upstream.set_delay(0)
    assert erased.deleted_session_count > 0
    for page in acme.export(entity):
        assert len(page.messages) % 2 == 0 or page.messages[0].sequence > 1, "a half turn"
        for message in page.messages:
            if message.message.role == common_pb2.ROLE_USER:
                text = message.message.content
                assert started[text] >= erase_started, f"{text!r} began before the erasure"


def test_the_python_client_erases_and_exports(
    keyed: InProcessServer, upstream: StandinThread
) -> None:
    entity = f"user-{new_id()}"
    client = sync_client()
    with Memori(keyed.target, api_key=ACME).attribution(entity, "app") as memori:
        memori.llm.register(client)
        ask(client, "remember me")
        memori.reset_session()
        ask(client, "and this")
        exported = list(memori.export_entity(entity))
        assert [s.messages for s in exported] == [
            [
                {"role": "user", "content": "remember me"},
                {"role": "assistant", "content": "echo: remember me"},
            ],
            [
                {"role": "user", "content": "and this"},
                {"role": "assistant", "content": "echo: and this"},
            ],
        ]
        assert exported[0].session.entity_id == entity
        erased = memori.erase_entity(entity)
        assert (erased.sessions, erased.messages) == (2, 4)
        assert list(memori.export_entity(entity)) == []

        async def in_a_loop() -> tuple[int, int]:
            again = await memori.aio.erase_entity(entity)
            sessions = [s async for s in memori.aio.export_entity(entity)]
            return again.sessions, len(sessions)

        assert asyncio.run(in_a_loop()) == (0, 0)
        with pytest.raises(ValueError, match="entity_id"):
            memori.erase_entity("")
