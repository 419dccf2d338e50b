"""The history windows a process holds between calls: never stale, bounded, and forgotten
with the session or entity they came from.

The rule under test everywhere: what the upstream receives is what the database holds,
whichever process stored it, and whatever the process held in memory before.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memori_proto.v1 import (
    chat_pb2_grpc,
    common_pb2,
    entity_pb2,
    entity_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)
from memori_server.domain import Attribution
from memori_server.storage.history_cache import (
    MESSAGE_OVERHEAD_BYTES,
    RELEASE_AT_LEAST,
    WINDOW_OVERHEAD_BYTES,
    HistoryCache,
    HistoryWindow,
    MessageSpan,
)
from memori_server.storage.records import HistoryMessage, encode_message
from prometheus_client import REGISTRY

from standin_upstream import StandinThread
from tests.chat_calls import complete, sent_messages, user
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

TENANT = "default"
CREATED = datetime(2026, 11, 29, tzinfo=UTC)


# -- the cache on its own ----------------------------------------------------------------


def said(text: str, role: str = "user", tokens: int = 10) -> HistoryMessage:
    return HistoryMessage(role, encode_message({"role": role, "content": text}), tokens)


def window(session_id: str, count: int, entity: str = "ann", **fields: Any) -> HistoryWindow:
    messages = [said(f"{session_id} {n}") for n in range(count)]
    return HistoryWindow.of(
        session_id,
        fields.get("create_time", CREATED),
        Attribution(entity, fields.get("process", "agent")),
        fields.get("through", count),
        messages,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_costs_its_encoded_bytes_and_a_fixed_overhead() -> None:
    held = window("s", 3)
    encoded = sum(len(m.encoded) for m in held.messages)
    assert held.size == WINDOW_OVERHEAD_BYTES + encoded + 3 * MESSAGE_OVERHEAD_BYTES
    assert held.from_session_start
    assert not window("s", 3, through=7).from_session_start


def test_the_least_recently_used_windows_go_first_within_the_bound() -> None:
    size = window("a", 4).size
    cache = HistoryCache(max_bytes=4 * size + 10, idle_seconds=600)
    for name in "abcd":
        cache.keep(TENANT, window(name, 4))
    assert cache.lookup(TENANT, "a", Attribution("ann", "agent")) is not None  # a is now newest
    cache.keep(TENANT, window("e", 4))
    assert cache.lookup(TENANT, "b", Attribution("ann", "agent")) is None  # b was oldest
    assert {"a", "c", "d", "e"} == {
        name for name in "abcde" if cache.lookup(TENANT, name, Attribution("ann", "agent"))
    }
    assert cache.size == 4 * size
    assert REGISTRY.get_sample_value("memori_history_cache_bytes") == cache.size
    assert REGISTRY.get_sample_value("memori_history_cache_sessions") == len(cache) == 4


def test_one_window_larger_than_a_quarter_of_the_bound_is_not_held() -> None:
    big = window("big", 40)
    cache = HistoryCache(max_bytes=big.size * 3, idle_seconds=600)
    cache.keep(TENANT, big)
    assert len(cache) == 0
    assert cache.size == 0


def test_idle_windows_are_let_go() -> None:
    clock = Clock()
    cache = HistoryCache(max_bytes=10**6, idle_seconds=60, clock=clock)
    cache.keep(TENANT, window("old", 2))
    clock.now += 30
    cache.keep(TENANT, window("new", 2))
    clock.now += 31
    assert cache.sweep() == 1
    assert cache.lookup(TENANT, "old", Attribution("ann", "agent")) is None
    assert cache.lookup(TENANT, "new", Attribution("ann", "agent")) is not None
    clock.now += 61
    assert cache.sweep() == 1
    assert len(cache) == 0
    assert cache.size == 0


def test_an_older_window_never_replaces_a_newer_one() -> None:
    cache = HistoryCache(max_bytes=10**6, idle_seconds=600)
    cache.keep(TENANT, window("s", 6))
    cache.keep(TENANT, window("s", 4))  # a slower call that read before the newer turn
    held = cache.lookup(TENANT, "s", Attribution("ann", "agent"))
    assert held is not None
    assert held.through == 6
    # The same id with another creation time is another session: it replaces the window.
    later = CREATED + timedelta(seconds=1)
    cache.keep(TENANT, window("s", 2, create_time=later))
    held = cache.lookup(TENANT, "s", Attribution("ann", "agent"))
    assert held is not None
    assert held.create_time == later
    assert held.through == 2


def test_a_stored_turn_extends_only_the_window_it_follows() -> None:
    cache = HistoryCache(max_bytes=10**6, idle_seconds=600)
    cache.keep(TENANT, window("s", 4))
    turn = [said("q"), said("a", "assistant")]
    cache.extend(TENANT, "s", CREATED, 8, turn, token_budget=10**6, min_messages=1)  # a gap
    held = cache.lookup(TENANT, "s", Attribution("ann", "agent"))
    assert held is not None
    assert held.through == 4
    cache.extend(TENANT, "s", CREATED + timedelta(1), 6, turn, 10**6, 1)  # another session
    assert held is cache.lookup(TENANT, "s", Attribution("ann", "agent"))
    cache.extend(TENANT, "s", CREATED, 6, turn, token_budget=10**6, min_messages=1)
    held = cache.lookup(TENANT, "s", Attribution("ann", "agent"))
    assert held is not None
    assert held.through == 6
    assert held.messages[-2:] == tuple(turn)


def test_extending_lets_go_of_what_the_budget_no_longer_reaches() -> None:
    held = window("s", 10).extended([said("q"), said("a", "assistant")], 35, min_messages=1)
    # 10 tokens each: the newest until the budget is exceeded, the one that exceeds it too.
    assert [m.encoded for m in held.messages] == [
        said("s 8").encoded,
        said("s 9").encoded,
        said("q").encoded,
        said("a", "assistant").encoded,
    ]
    assert held.through == 12
    assert not held.from_session_start
    assert len(window("s", 10).extended([said("q")], 35, min_messages=8).messages) == 8


def test_successive_windows_share_their_list_and_an_older_one_extends_by_copy() -> None:
    """A session's newest window appends its turn to the list its predecessor reads (the
    predecessor, held by a call in flight, still sees only its own messages); extending a
    window that is not the newest copies, and changes nothing another window sees."""
    first = window("s", 4)
    second = first.extended([said("q"), said("a", "assistant")], 10**6, min_messages=1)
    before = list(first.messages)
    assert len(first.messages) == 4
    assert list(first.messages) == before
    assert [m.encoded for m in second.messages] == [
        *(m.encoded for m in before),
        *(said(text, role).encoded for text, role in (("q", "user"), ("a", "assistant"))),
    ]
    other = first.extended([said("other")], 10**6, min_messages=1)  # first is not the newest
    assert list(first.messages) == before
    assert len(second.messages) == 6
    assert second.messages[-1] == said("a", "assistant")
    assert list(other.messages) == [*before, said("other")]
    assert other.size == WINDOW_OVERHEAD_BYTES + sum(
        len(m.encoded) + MESSAGE_OVERHEAD_BYTES for m in other.messages
    )


def test_a_span_reads_as_the_sequence_of_its_messages() -> None:
    """Index, slice, reverse and compare like the tuple it replaces, within its own range
    of a list that holds more."""
    items = [said(str(n)) for n in range(10)]
    span = MessageSpan.of(items)[2:7]
    assert span == tuple(items[2:7])
    assert span == items[2:7]
    assert span != items[2:8]
    assert list(span) == items[2:7]
    assert list(reversed(span)) == items[6:1:-1]
    assert span[0] == items[2]
    assert span[-1] == items[6]
    assert span[1:3] == items[3:5]
    assert span[-2:] == items[5:7]
    assert span[4:1] == []
    assert span[:] == items[2:7]
    assert list(reversed(span[1:])) == items[6:2:-1]
    assert list(reversed(span[:1])) == [items[2]]  # far from the list's end
    assert list(span[4:]) == [items[6]]  # far from the list's start
    for outside in (5, -6):
        with pytest.raises(IndexError):
            span[outside]


def _as_loaded(
    held: HistoryWindow, turn: list[HistoryMessage], budget: int, min_messages: int
) -> HistoryWindow:
    """What a load reads after the turn: from the newest message back until the budget is
    exceeded (that message included), and at least `min_messages`."""
    combined = (*held.messages, *turn)
    start, used = len(combined), 0
    while start > 0 and (used <= budget or len(combined) - start < min_messages):
        start -= 1
        used += combined[start].token_count
    through = held.through + len(turn)
    return HistoryWindow.of(
        held.session_id, held.create_time, held.attribution, through, combined[start:]
    )


_MESSAGES = st.lists(
    st.builds(
        HistoryMessage,
        st.sampled_from(["user", "assistant"]),
        st.binary(max_size=40),
        st.sampled_from([0, 1, 5, 27, 300]),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(
    stored=_MESSAGES,
    older=st.integers(0, 5),
    turns=st.lists(_MESSAGES, min_size=1, max_size=3),
    budget=st.sampled_from([0, 1, 30, 100, 1000]),
    min_messages=st.integers(0, 6),
)
def test_extending_is_what_a_load_would_read(
    stored: list[HistoryMessage],
    older: int,
    turns: list[list[HistoryMessage]],
    budget: int,
    min_messages: int,
) -> None:
    """Extending counts from the oldest end (what it adds and lets go, not the whole
    window): the same window, tokens and size as reading from the newest end."""
    held = HistoryWindow.of("s", CREATED, Attribution("ann", "agent"), len(stored) + older, stored)
    lineage = list(stored)  # every message its log has held, oldest first
    for turn in turns:
        extended = held.extended(turn, budget, min_messages)
        lineage += turn
        # What it keeps alive besides the window: what it let go of that its log still
        # holds (the newest of the lineage), at most a quarter more.
        count, _encoded = extended.messages.retained_bytes()
        retained = lineage[len(lineage) - count :]
        assert retained[len(retained) - len(extended.messages) :] == list(extended.messages)
        assert extended.size == WINDOW_OVERHEAD_BYTES + sum(
            len(m.encoded) + MESSAGE_OVERHEAD_BYTES for m in retained
        )
        released = len(retained) - len(extended.messages)
        assert released < RELEASE_AT_LEAST or released * 4 < len(extended.messages)
        expected = _as_loaded(held, turn, budget, min_messages)
        assert dataclasses.replace(extended, size=expected.size) == expected
        held = extended


def test_an_erased_entity_leaves_no_window_and_others_stay() -> None:
    cache = HistoryCache(max_bytes=10**6, idle_seconds=600)
    cache.keep(TENANT, window("a1", 2, entity="ann"))
    cache.keep(TENANT, window("a2", 2, entity="ann", process="other"))
    cache.keep(TENANT, window("b1", 2, entity="bob"))
    cache.keep("tenant-2", window("a3", 2, entity="ann"))
    cache.forget_entity(TENANT, "ann")
    assert len(cache) == 2
    assert cache.lookup(TENANT, "b1", Attribution("bob", "agent")) is not None
    assert cache.lookup("tenant-2", "a3", Attribution("ann", "agent")) is not None
    # Nor is the attribution's pointer left behind.
    assert cache.lookup(TENANT, None, Attribution("ann", "agent")) is None


def test_a_call_without_a_session_id_finds_its_attributions_last_session() -> None:
    cache = HistoryCache(max_bytes=10**6, idle_seconds=600)
    cache.keep(TENANT, window("s", 2))
    held = cache.lookup(TENANT, None, Attribution("ann", "agent"))
    assert held is not None
    assert held.session_id == "s"
    assert cache.lookup(TENANT, None, Attribution("ann", "elsewhere")) is None
    assert cache.lookup("tenant-2", None, Attribution("ann", "agent")) is None


# -- through the servers -----------------------------------------------------------------


def _contents(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content")) for m in messages]


def _stored(stub: session_pb2_grpc.SessionServiceStub, session_id: str) -> list[str]:
    page = stub.ListMessages(
        session_pb2.ListMessagesRequest(session_id=session_id, page_size=1000), timeout=10
    )
    return [m.message.content for m in page.messages]


class Process:
    """One server process's stubs."""

    def __init__(self, server: ServerProcess) -> None:
        channel = grpc.insecure_channel(server.target)
        self.chat = chat_pb2_grpc.ChatServiceStub(channel)
        self.sessions = session_pb2_grpc.SessionServiceStub(channel)


@pytest.fixture
def two_processes(fresh_database_url: str) -> Iterator[tuple[StandinProcess, Process, Process]]:
    with StandinProcess() as standin:
        args = ("--upstream-base-url", standin.base_url)
        with (
            ServerProcess(fresh_database_url, *args) as first,
            ServerProcess(fresh_database_url, *args) as second,
        ):
            yield standin, Process(first), Process(second)


def test_two_processes_on_one_session_each_send_the_others_turns(
    two_processes: tuple[StandinProcess, Process, Process],
) -> None:
    standin, first, second = two_processes
    who, session_id = attribution(), new_id()
    expected: list[str] = []
    for turn, process in zip(range(8), itertools.cycle([first, second, second, first])):
        text = f"turn {turn}"
        complete(process.chat, who, user(text), session_id=session_id)
        sent = standin.requests()[-1]["body"]["messages"]
        assert _contents(sent) == [*expected, text], f"turn {turn}: a stale window was sent"
        expected += [text, f"echo: {text}"]
    assert _stored(first.sessions, session_id) == expected


def test_a_session_deleted_and_created_again_elsewhere_is_read_again(
    two_processes: tuple[StandinProcess, Process, Process],
) -> None:
    standin, first, second = two_processes
    who, session_id = attribution(), new_id()
    for text in ("old 1", "old 2"):
        complete(first.chat, who, user(text), session_id=session_id)  # first holds 4 messages
    second.sessions.Delete(session_pb2.DeleteRequest(session_id=session_id, attribution=who))
    for text in ("new 1", "new 2", "new 3"):  # more messages than first holds, same id
        complete(second.chat, who, user(text), session_id=session_id)
    complete(first.chat, who, user("new 4"), session_id=session_id)
    sent = _contents(standin.requests()[-1]["body"]["messages"])
    assert sent == ["new 1", "echo: new 1", "new 2", "echo: new 2", "new 3", "echo: new 3", "new 4"]


def test_a_session_deleted_elsewhere_is_not_served_from_memory(
    two_processes: tuple[StandinProcess, Process, Process],
) -> None:
    standin, first, second = two_processes
    who = attribution()
    complete(first.chat, who, user("remember me"))  # the attribution's current session
    current = first.sessions.Get(session_pb2.GetRequest(attribution=who)).session
    second.sessions.Delete(session_pb2.DeleteRequest(session_id=current.id, attribution=who))
    reply = complete(first.chat, who, user("who am I?"))
    assert reply.session.id != current.id  # a new current session
    assert _contents(standin.requests()[-1]["body"]["messages"]) == ["who am I?"]


# -- one process: delete, erase, eviction ----------------------------------------------------


@pytest.fixture
def lone_server(database_url: str, upstream: StandinThread) -> Iterator[InProcessServer]:
    settings = make_settings(database_url, upstream_base_url=upstream.base_url)
    running = InProcessServer(settings)
    yield running
    running.close()


def _cache(server: InProcessServer) -> HistoryCache:
    cache = server.server._history_cache
    assert cache is not None
    return cache


def _stubs(
    server: InProcessServer,
) -> tuple[chat_pb2_grpc.ChatServiceStub, session_pb2_grpc.SessionServiceStub]:
    channel = grpc.insecure_channel(server.target)
    return chat_pb2_grpc.ChatServiceStub(channel), session_pb2_grpc.SessionServiceStub(channel)


def test_deleting_a_session_drops_its_window(
    lone_server: InProcessServer, upstream: StandinThread
) -> None:
    chat, sessions = _stubs(lone_server)
    who, session_id = attribution(), new_id()
    complete(chat, who, user("secret"), session_id=session_id)
    assert _cache(lone_server).lookup(TENANT, session_id, _attribution(who)) is not None
    sessions.Delete(session_pb2.DeleteRequest(session_id=session_id, attribution=who))
    assert _cache(lone_server).lookup(TENANT, session_id, _attribution(who)) is None
    complete(chat, who, user("again"), session_id=session_id)  # the id names a new session
    assert _contents(sent_messages(upstream)) == ["again"]


def test_erasing_an_entity_drops_its_windows_and_keeps_the_others(
    lone_server: InProcessServer, upstream: StandinThread
) -> None:
    chat, _ = _stubs(lone_server)
    erased, kept = attribution(), attribution()
    erased_session, kept_session = new_id(), new_id()
    complete(chat, erased, user("erase me"), session_id=erased_session)
    complete(chat, kept, user("keep me"), session_id=kept_session)
    entities = entity_pb2_grpc.EntityServiceStub(grpc.insecure_channel(lone_server.target))
    entities.Erase(entity_pb2.EraseRequest(entity_id=erased.entity_id))
    cache = _cache(lone_server)
    assert cache.lookup(TENANT, erased_session, _attribution(erased)) is None
    assert cache.lookup(TENANT, kept_session, _attribution(kept)) is not None
    complete(chat, erased, user("hello?"), session_id=erased_session)
    assert _contents(sent_messages(upstream)) == ["hello?"]


def test_windows_evicted_by_the_bound_are_read_again_whole(
    database_url: str, upstream: StandinThread
) -> None:
    # Room for about four of these six windows: the round robin misses again and again.
    settings = make_settings(
        database_url, upstream_base_url=upstream.base_url, history_cache_bytes=16 * 1024
    )
    server = InProcessServer(settings)
    try:
        chat, sessions = _stubs(server)
        who = attribution()
        ids = [new_id() for _ in range(6)]
        misses = _lookups("miss")
        for turn in range(4):
            for session_id in ids:
                text = f"{session_id} {turn} " + "x" * 200
                complete(chat, who, user(text), session_id=session_id)
                sent = _contents(sent_messages(upstream))
                assert sent == [*_stored(sessions, session_id)[:-2], text]
        assert _cache(server).size <= 16 * 1024
        assert 0 < len(_cache(server)) < len(ids)
        assert _lookups("miss") - misses > len(ids)  # evicted windows were read again
    finally:
        server.close()


def test_without_the_cache_the_same_conversation_is_sent(
    database_url: str, upstream: StandinThread
) -> None:
    sent: dict[int, list[list[str]]] = {}
    for cache_bytes in (0, 64 * 1024 * 1024):
        settings = make_settings(
            database_url, upstream_base_url=upstream.base_url, history_cache_bytes=cache_bytes
        )
        server = InProcessServer(settings)
        try:
            chat, _ = _stubs(server)
            who, session_id = attribution(), new_id()
            sent[cache_bytes] = []
            for turn in range(5):
                complete(chat, who, user(f"turn {turn}"), session_id=session_id)
                sent[cache_bytes].append(_contents(sent_messages(upstream)))
            if cache_bytes == 0:
                assert server.server._history_cache is not None
                assert len(server.server._history_cache) == 0
        finally:
            server.close()
    assert sent[0] == sent[64 * 1024 * 1024]


def _lookups(result: str) -> float:
    return REGISTRY.get_sample_value("memori_history_cache_lookups_total", {"result": result}) or 0


def _attribution(message: common_pb2.Attribution) -> Attribution:
    return Attribution(message.entity_id, message.process_id)
