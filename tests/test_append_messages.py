"""SessionService.AppendMessages: messages stored without a completion, through a real server
on both databases (and, below, TurnStore's part of it without a server)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import openai
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from memori_client import Memori, SessionAttributionMismatch
from memori_proto.v1 import chat_pb2_grpc, common_pb2, session_pb2, session_pb2_grpc
from memori_server.domain import Attribution
from memori_server.errors import EntityErased
from memori_server.storage.entity_store import EntityStore
from memori_server.storage.idempotency import ClaimState
from memori_server.storage.records import Completion, NewMessage

from standin_upstream import StandinThread
from tests.chat_calls import complete, message, sent_messages, stored, user
from tests.client_support import ask
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails
from tests.storage_support import Stores

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
IMPORTED = datetime(2024, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)


def stamp(value: datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result


def append(
    sessions: session_pb2_grpc.SessionServiceStub,
    who: common_pb2.Attribution,
    *messages: common_pb2.ChatMessage,
    session_id: str = "",
    request_id: str = "",
    create_time: datetime | None = None,
) -> session_pb2.AppendMessagesResponse:
    request = session_pb2.AppendMessagesRequest(
        attribution=who, session_id=session_id, messages=list(messages), request_id=request_id
    )
    if create_time is not None:
        request.create_time.CopyFrom(stamp(create_time))
    response: session_pb2.AppendMessagesResponse = sessions.AppendMessages(request, timeout=30)
    return response


def listed(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str
) -> list[session_pb2.Message]:
    response = sessions.ListMessages(
        session_pb2.ListMessagesRequest(session_id=session_id, page_size=1000), timeout=30
    )
    return list(response.messages)


def count_of(sessions: session_pb2_grpc.SessionServiceStub, session_id: str) -> int:
    reply = sessions.Get(session_pb2.GetRequest(session_id=session_id), timeout=30)
    return int(reply.session.message_count)


def current_of(sessions: session_pb2_grpc.SessionServiceStub, who: common_pb2.Attribution) -> str:
    return str(sessions.Get(session_pb2.GetRequest(attribution=who), timeout=30).session.id)


def tool_exchange() -> list[common_pb2.ChatMessage]:
    call = common_pb2.ToolCall(
        id="call_1",
        type="function",
        function=common_pb2.FunctionCall(name="lookup", arguments='{"q": "weather"}'),
    )
    return [
        message("assistant", tool_calls=[call]),
        message("tool", "sunny", tool_call_id="call_1"),
        message("assistant", "It is sunny."),
    ]


# -- storing, and the session used ------------------------------------------------------------


def test_appended_messages_are_listed_with_their_time_and_sequences(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who, session_id = attribution(), new_id()
    part = struct_pb2.Struct()
    part.update({"type": "text", "text": "a part"})
    batch = [
        message("system", "You are terse."),
        message("developer", "Answer in English."),
        message("user", "Hello", name="ada"),
        common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content_parts=[part]),
        *tool_exchange(),
    ]
    reply = append(sessions, who, *batch, session_id=session_id, create_time=IMPORTED)
    assert list(reply.sequences) == list(range(1, len(batch) + 1))
    assert not reply.replayed
    assert reply.session.id == session_id
    assert reply.session.attribution == who
    assert reply.session.message_count == len(batch)
    items = listed(sessions, session_id)
    assert [item.sequence for item in items] == list(reply.sequences)
    assert [item.message for item in items] == batch  # system and developer stored too
    assert {item.create_time.ToDatetime(tzinfo=UTC) for item in items} == {IMPORTED}
    assert all(item.token_count > 0 for item in items)
    # The session itself was active now, whatever the messages' dates.
    assert reply.session.update_time.ToDatetime(tzinfo=UTC) > IMPORTED + timedelta(days=1)


def test_without_create_time_the_messages_are_dated_now(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    reply = append(sessions, attribution(), user("now"))
    (item,) = listed(sessions, reply.session.id)
    assert before <= item.create_time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)


def test_a_time_a_little_ahead_of_the_servers_clock_is_taken_as_now(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    ahead = datetime.now(UTC) + timedelta(seconds=20)
    reply = append(sessions, attribution(), user("skewed"), create_time=ahead)
    (item,) = listed(sessions, reply.session.id)
    assert item.create_time.ToDatetime(tzinfo=UTC) < ahead


def test_an_unknown_id_is_created_and_later_appends_continue_it(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who, session_id = attribution(), new_id().upper()
    first = append(sessions, who, user("one"), message("assistant", "two"), session_id=session_id)
    assert first.session.id == session_id.lower()
    second = append(sessions, who, user("three"), session_id=session_id)
    assert list(first.sequences) == [1, 2]
    assert list(second.sequences) == [3]
    assert second.session.message_count == 3 == count_of(sessions, session_id.lower())
    assert second.session.create_time == first.session.create_time
    assert current_of(sessions, who) == session_id.lower()  # the session used is current


def test_without_an_id_the_attributions_current_session_is_used(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who = attribution()
    fresh = append(sessions, who, user("first ever"))  # none active: a new one
    assert current_of(sessions, who) == fresh.session.id
    again = append(sessions, who, user("more"))
    assert again.session.id == fresh.session.id
    assert list(again.sequences) == [2]
    reset = sessions.Reset(session_pb2.ResetRequest(attribution=who), timeout=30).session
    after_reset = append(sessions, who, user("after reset"))
    assert after_reset.session.id == reset.id != fresh.session.id
    assert list(after_reset.sequences) == [1]


def test_an_append_by_id_makes_that_session_current(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who = attribution()
    old = append(sessions, who, user("old"))
    sessions.Reset(session_pb2.ResetRequest(attribution=who), timeout=30)
    append(sessions, who, user("back to the old one"), session_id=old.session.id)
    assert current_of(sessions, who) == old.session.id


def test_another_attributions_session_is_refused_and_nothing_is_stored(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    owner, intruder = attribution(), attribution()
    taken = append(sessions, owner, user("mine"))
    failed = call_fails(
        lambda: append(sessions, intruder, user("not yours"), session_id=taken.session.id),
        PRECONDITION,
    )
    assert failed.reason == "SESSION_ATTRIBUTION_MISMATCH"
    assert count_of(sessions, taken.session.id) == 1


# -- validation, limits and atomicity --------------------------------------------------------


def _part_without_type() -> common_pb2.ChatMessage:
    part = struct_pb2.Struct()
    part.update({"text": "no type"})
    return common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content_parts=[part])


def _invalid_stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


INVALID_REQUESTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "no messages": ({"messages": []}, "messages", "at least one"),
    "no role": ({"messages": [common_pb2.ChatMessage(content="x")]}, "messages[0].role", "ROLE_"),
    "NUL": ({"messages": [user("ok"), user("a\x00b")]}, "messages[1]", "NUL"),
    "tool without id": (
        {"messages": [message("tool", "result")]},
        "messages[0].tool_call_id",
        "required",
    ),
    "part without type": (
        {"messages": [_part_without_type()]},
        "messages[0].content_parts[0].type",
        "required",
    ),
    "no attribution": ({"attribution": None}, "attribution", "required"),
    "bad session id": ({"session_id": "not-a-uuid"}, "session_id", "UUID v4"),
    "bad request id": ({"request_id": "has space"}, "request_id", "spaces"),
    "long request id": ({"request_id": "r" * 129}, "request_id", "128"),
    "future time": (
        {"create_time": stamp(datetime.now(UTC) + timedelta(hours=1))},
        "create_time",
        "future",
    ),
    "time out of range": (
        {"create_time": _invalid_stamp(253402300800)},
        "create_time",
        "not a valid timestamp",
    ),
    "bad nanos": ({"create_time": _invalid_stamp(0, -1)}, "create_time", "not a valid"),
    "before 1970": ({"create_time": _invalid_stamp(-3600)}, "create_time", "1970"),
}


@pytest.mark.parametrize("case", INVALID_REQUESTS, ids=list(INVALID_REQUESTS))
def test_invalid_requests_name_the_field_and_store_nothing(
    sessions: session_pb2_grpc.SessionServiceStub, case: str
) -> None:
    fields, field, words = INVALID_REQUESTS[case]
    who, session_id = attribution(), new_id()
    values: dict[str, Any] = {
        "attribution": who,
        "session_id": session_id,
        "messages": [user("hello")],
        **fields,
    }
    request = session_pb2.AppendMessagesRequest(
        **{key: value for key, value in values.items() if value is not None}
    )
    failed = call_fails(lambda: sessions.AppendMessages(request, timeout=30), INVALID)
    assert field in failed.field_violations, failed.field_violations
    assert words in failed.field_violations[field]
    call_fails(
        lambda: sessions.Get(session_pb2.GetRequest(session_id=session_id)),
        grpc.StatusCode.NOT_FOUND,
    )


def test_one_bad_message_among_good_ones_stores_none_of_them(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who = attribution()
    existing = append(sessions, who, user("before"))
    batch = [user("good"), message("assistant", "fine"), common_pb2.ChatMessage(content="?")]
    failed = call_fails(
        lambda: append(sessions, who, *batch, session_id=existing.session.id), INVALID
    )
    assert list(failed.field_violations) == ["messages[2].role"]
    assert count_of(sessions, existing.session.id) == 1


def test_a_private_content_url_is_refused_and_nothing_is_stored(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    """Stored parts reach the upstream on every later turn: the URL policy of a completion."""
    who, session_id = attribution(), new_id()
    part = struct_pb2.Struct()
    part.update({"type": "image_url", "image_url": {"url": "https://169.254.169.254/latest"}})
    image = common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content_parts=[part])
    failed = call_fails(
        lambda: append(sessions, who, user("look"), image, session_id=session_id), INVALID
    )
    assert "messages[1].content_parts[0].image_url.url" in failed.field_violations
    call_fails(
        lambda: sessions.Get(session_pb2.GetRequest(session_id=session_id)),
        grpc.StatusCode.NOT_FOUND,
    )


@pytest.fixture(scope="module")
def bounded(database_url: str, upstream: StandinThread) -> Iterator[InProcessServer]:
    """A server that takes at most 3 messages a request, and 2 appends per tenant at once
    with one more a second (its completions have their own budget)."""
    server = InProcessServer(
        make_settings(
            database_url,
            upstream_base_url=upstream.base_url,
            max_request_messages=3,
            tenant_completions_per_second=0.01,
            tenant_completions_burst=3,
        )
    )
    yield server
    server.close()


def test_more_messages_than_the_server_allows_are_refused_and_tenants_are_limited(
    bounded: InProcessServer, upstream: StandinThread
) -> None:
    with grpc.insecure_channel(bounded.target) as channel:
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        who = attribution()
        failed = call_fails(
            lambda: append(sessions, who, *(user(f"m{n}") for n in range(4))), INVALID
        )
        assert "at most 3" in failed.field_violations["messages"]
        assert "several calls" in failed.field_violations["messages"]
        append(sessions, who, *(user(f"m{n}") for n in range(3)))
        append(sessions, who, user("third call"))
        limited = call_fails(
            lambda: append(sessions, who, user("fourth call")), grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert limited.reason == "TENANT_RATE_LIMITED"
        assert "appends per second" in limited.message
        # Completions are counted apart: an import does not take the live traffic's budget.
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        assert complete(chat, who, user("still answered")).completion.id


# -- idempotency -------------------------------------------------------------------------------


def test_a_retry_with_the_request_id_returns_the_first_result_and_stores_nothing(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who, request_id = attribution(), f"import-{uuid.uuid4()}"
    append(sessions, who, user("earlier"))
    batch = (user("q"), message("assistant", "a"))
    first = append(sessions, who, *batch, request_id=request_id, create_time=IMPORTED)
    append(sessions, who, user("later"))  # the session moves on
    retry = append(sessions, who, *batch, request_id=request_id, create_time=IMPORTED)
    assert list(first.sequences) == list(retry.sequences) == [2, 3]
    assert (first.replayed, retry.replayed) == (False, True)
    assert retry.session.id == first.session.id
    assert retry.session.message_count == 4  # the session as it is now
    assert count_of(sessions, first.session.id) == 4


def test_a_request_id_reused_for_another_request_is_failed_precondition(
    sessions: session_pb2_grpc.SessionServiceStub, chat: chat_pb2_grpc.ChatServiceStub
) -> None:
    who, request_id = attribution(), f"import-{uuid.uuid4()}"
    first = append(sessions, who, user("one"), request_id=request_id)
    failed = call_fails(
        lambda: append(sessions, who, user("another"), request_id=request_id), PRECONDITION
    )
    assert failed.reason == "REQUEST_ID_REUSED"
    # A completion's request id is not an append's either.
    completed = f"chat-{uuid.uuid4()}"
    complete(chat, who, user("hi"), request_id=completed)
    failed = call_fails(
        lambda: append(sessions, who, user("hi"), request_id=completed), PRECONDITION
    )
    assert failed.reason == "REQUEST_ID_REUSED"
    assert count_of(sessions, first.session.id) == 3


def test_a_failed_append_frees_its_request_id(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    owner, intruder, request_id = attribution(), attribution(), f"import-{uuid.uuid4()}"
    taken = append(sessions, owner, user("mine"))
    call_fails(
        lambda: append(
            sessions, intruder, user("x"), session_id=taken.session.id, request_id=request_id
        ),
        PRECONDITION,
    )
    # The retry runs again (a release in flight is waited for), and fails the same way.
    failed = call_fails(
        lambda: append(
            sessions, intruder, user("x"), session_id=taken.session.id, request_id=request_id
        ),
        PRECONDITION,
    )
    assert failed.reason == "SESSION_ATTRIBUTION_MISMATCH"  # not REQUEST_ID_*
    assert count_of(sessions, taken.session.id) == 1


# -- what a later completion sees --------------------------------------------------------------


def test_a_following_completion_gets_the_appended_messages_as_history(
    sessions: session_pb2_grpc.SessionServiceStub,
    chat: chat_pb2_grpc.ChatServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    appended = append(
        sessions,
        who,
        message("system", "You are a pirate."),
        user("My boat is the Pearl"),
        message("assistant", "Arr, the Pearl!"),
        *tool_exchange(),
        create_time=IMPORTED,
    )
    reply = complete(chat, who, user("What is my boat called?"))
    assert reply.session.id == appended.session.id
    assert sent_messages(upstream) == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "My boat is the Pearl"},
        {"role": "assistant", "content": "Arr, the Pearl!"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "weather"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": "What is my boat called?"},
    ]
    assert reply.session.message_count == 8


def test_appends_between_completions_keep_the_held_history_in_order(
    sessions: session_pb2_grpc.SessionServiceStub,
    chat: chat_pb2_grpc.ChatServiceStub,
    upstream: StandinThread,
) -> None:
    """The server holds each session's history window between calls: an append (dated in
    the past, with an instruction message) extends it in sequence order."""
    who = attribution()
    first = complete(chat, who, user("one"))
    append(
        sessions,
        who,
        message("developer", "Be brief."),
        user("two"),
        message("assistant", "2"),
        create_time=IMPORTED,
    )
    complete(chat, who, user("three"))
    assert [m.get("content") for m in sent_messages(upstream)] == [
        "one",
        "echo: one",
        "Be brief.",
        "two",
        "2",
        "three",
    ]
    assert stored(sessions, first.session.id)[-1] == (7, "assistant", "echo: three")


def test_a_large_append_is_stored_whole_and_replayed_within_the_budget(
    sessions: session_pb2_grpc.SessionServiceStub,
    chat: chat_pb2_grpc.ChatServiceStub,
    upstream: StandinThread,
) -> None:
    """Many messages (the heavy-work path): all stored; a completion replays whole turns."""
    who, session_id = attribution(), new_id()
    batch = [
        message("user" if n % 2 == 0 else "assistant", f"message {n} " + "word " * 40)
        for n in range(300)
    ]
    reply = append(sessions, who, *batch, session_id=session_id)
    assert list(reply.sequences) == list(range(1, 301))
    assert count_of(sessions, session_id) == 300
    complete(chat, who, user("and now?"), session_id=session_id)
    sent = sent_messages(upstream)
    assert sent[0]["role"] == "user"  # trimmed to the budget at a turn's start
    assert 2 < len(sent) < 301
    assert sent[-2]["content"] == batch[-1].content
    assert sent[-1] == {"role": "user", "content": "and now?"}


# -- concurrency ---------------------------------------------------------------------------


def test_parallel_appends_to_one_session_get_distinct_contiguous_sequences(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who, session_id = attribution(), new_id()  # created by whichever comes first

    def one(n: int) -> list[int]:
        reply = append(
            sessions, who, *(user(f"call {n} part {k}") for k in range(3)), session_id=session_id
        )
        return list(reply.sequences)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    for sequences in results:
        assert sequences == list(range(sequences[0], sequences[0] + 3))
    assert sorted(s for sequences in results for s in sequences) == list(range(1, 25))
    assert count_of(sessions, session_id) == 24
    by_sequence = {item.sequence: item.message.content for item in listed(sessions, session_id)}
    for n, sequences in enumerate(results):  # each call's messages in its order, together
        assert [by_sequence[s] for s in sequences] == [f"call {n} part {k}" for k in range(3)]


def test_parallel_first_appends_of_an_attribution_join_one_session(
    sessions: session_pb2_grpc.SessionServiceStub,
) -> None:
    who = attribution()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda n: append(sessions, who, user(f"hi {n}")), range(6)))
    assert len({reply.session.id for reply in replies}) == 1
    assert sorted(reply.sequences[0] for reply in replies) == list(range(1, 7))
    assert current_of(sessions, who) == replies[0].session.id


# -- the Python client -----------------------------------------------------------------------


def test_the_python_client_appends_to_its_session(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    imported = [
        {"role": "system", "content": "You remember names."},
        {"role": "user", "content": "My name is Ada"},
        {"role": "assistant", "content": "Hello Ada"},
    ]
    naive = datetime(2024, 1, 2, 3, 4, 5)  # taken as UTC
    sequences = memori.append_messages(imported, create_time=naive, request_id="import-1")
    assert sequences == [1, 2, 3]
    assert memori.append_messages(imported, create_time=naive, request_id="import-1") == [1, 2, 3]
    assert memori.session.history() == imported
    ask(client, "What is my name?")
    assert sent_messages(upstream)[:3] == imported
    elsewhere = str(uuid.uuid4())
    assert asyncio.run(
        memori.session.aio.append_messages([{"role": "user", "content": "x"}], session_id=elsewhere)
    ) == [1]
    with pytest.raises(ValueError, match="UUID"):
        memori.append_messages(imported, session_id="nope")
    other = Memori(memori.connection.target).attribution("someone-else")
    with other, pytest.raises(SessionAttributionMismatch):
        other.append_messages(imported, session_id=memori.session.id)


# -- TurnStore's part, without a server ------------------------------------------------------


@pytest.fixture(scope="module")
def stores(fresh_module_database_url: str) -> Iterator[Stores]:
    opened = Stores(fresh_module_database_url, fast_paths=True)
    yield opened
    opened.close()


def _load(stores: Stores, owner: Attribution, session_id: str | None) -> Any:
    return stores.run(
        stores.turns.load(
            "default", owner, session_id, idle_seconds=86400, token_budget=8000, min_messages=0
        )
    )


def test_a_derived_result_names_where_the_messages_landed(stores: Stores) -> None:
    owner = Attribution(f"user-{uuid.uuid4().hex[:8]}", "agent")
    request_id = str(uuid.uuid4())
    claim = stores.run(stores.requests.claim("default", request_id, "append", "fp", 60))
    first = _load(stores, owner, None)
    stores.run(
        stores.turns.store_turn(
            "default", owner, first, [NewMessage("user", "a")], idle_seconds=86400, completion=None
        )
    )
    record = stores.run(
        stores.turns.store_turn(
            "default",
            owner,
            _load(stores, owner, None),
            [NewMessage("user", "b"), NewMessage("assistant", "c")],
            idle_seconds=86400,
            completion=Completion(
                request_id,
                claim.owner or "",
                None,
                60,
                derive=lambda session: json.dumps(session.message_count),
            ),
            message_time=IMPORTED,
        )
    )
    done = stores.run(stores.requests.claim("default", request_id, "append", "fp", 60))
    assert done.state is ClaimState.DONE
    assert (done.session_id, done.response) == (record.id, "3")
    messages, _ = stores.run(
        stores.sessions.list_messages("default", record.id, None, after_sequence=0, limit=10)
    )
    assert [m.create_time for m in messages][1:] == [IMPORTED, IMPORTED]
    assert record.update_time > IMPORTED


def test_an_entity_erased_during_the_call_is_not_brought_back(stores: Stores) -> None:
    owner = Attribution(f"user-{uuid.uuid4().hex[:8]}", "agent")
    existing = _load(stores, owner, None)
    stores.run(
        stores.turns.store_turn(
            "default",
            owner,
            existing,
            [NewMessage("user", "a")],
            idle_seconds=86400,
            completion=None,
        )
    )
    for session_id in (None, str(uuid.uuid4())):  # its current session, and a new one
        loaded = _load(stores, owner, session_id)
        stores.run(EntityStore(stores.database).erase("default", owner.entity_id))
        with pytest.raises(EntityErased):
            stores.run(
                stores.turns.store_turn(
                    "default",
                    owner,
                    loaded,
                    [NewMessage("user", "late")],
                    idle_seconds=86400,
                    completion=None,
                    message_time=IMPORTED,
                )
            )
