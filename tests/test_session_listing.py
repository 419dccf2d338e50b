"""List and ListMessages over the wire: order, pagination tokens, filters, ownership."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from memori_server.storage.records import NewMessage

from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def make_sessions(
    sessions: SessionServiceStub, who: common_pb2.Attribution, count: int
) -> list[str]:
    ids = []
    for _ in range(count):
        ids.append(sessions.Reset(session_pb2.ResetRequest(attribution=who)).session.id)
        time.sleep(0.002)  # distinct update times, so the expected order is unambiguous
    return ids


def list_all(sessions: SessionServiceStub, request: session_pb2.ListRequest) -> list[str]:
    seen: list[str] = []
    while True:
        page = sessions.List(request)
        assert len(page.sessions) <= max(request.page_size, 1) or request.page_size == 0
        seen.extend(s.id for s in page.sessions)
        if not page.next_page_token:
            return seen
        request.page_token = page.next_page_token


def test_list_pages_newest_activity_first(sessions: SessionServiceStub) -> None:
    who = attribution()
    created = make_sessions(sessions, who, 5)
    make_sessions(sessions, attribution(), 2)  # someone else's: never listed
    first = sessions.List(session_pb2.ListRequest(attribution=who, page_size=2))
    assert [s.id for s in first.sessions] == created[::-1][:2]
    assert first.next_page_token
    listed = list_all(sessions, session_pb2.ListRequest(attribution=who, page_size=2))
    assert listed == created[::-1]
    # Resuming an old session moves it to the front.
    sessions.Set(session_pb2.SetRequest(attribution=who, session_id=created[0]))
    assert sessions.List(session_pb2.ListRequest(attribution=who)).sessions[0].id == created[0]


def test_list_last_page_has_no_token(sessions: SessionServiceStub) -> None:
    who = attribution()
    make_sessions(sessions, who, 3)
    page = sessions.List(session_pb2.ListRequest(attribution=who, page_size=3))
    assert len(page.sessions) == 3
    assert page.next_page_token == ""
    empty = sessions.List(session_pb2.ListRequest(attribution=attribution()))
    assert list(empty.sessions) == []
    assert empty.next_page_token == ""


def test_list_filters_on_update_time(sessions: SessionServiceStub) -> None:
    who = attribution()
    old = make_sessions(sessions, who, 2)
    time.sleep(0.3)
    cutoff = datetime.now(UTC)
    time.sleep(0.3)
    recent = make_sessions(sessions, who, 2)
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(cutoff)
    by_time = list_all(
        sessions, session_pb2.ListRequest(attribution=who, min_update_time=since, page_size=1)
    )
    assert by_time == recent[::-1]
    window = duration_pb2.Duration()
    # The server measures the window from its own "now", a little later: the 0.3 s gaps on
    # either side of the cutoff absorb that, so a slow host cannot flip the result.
    window.FromTimedelta(datetime.now(UTC) - cutoff + timedelta(milliseconds=150))
    within = list_all(sessions, session_pb2.ListRequest(attribution=who, active_within=window))
    assert within == recent[::-1]
    day = duration_pb2.Duration(seconds=86400)
    assert list_all(sessions, session_pb2.ListRequest(attribution=who, active_within=day)) == [
        *recent[::-1],
        *old[::-1],
    ]


def test_list_rejects_bad_paging_and_filters(sessions: SessionServiceStub) -> None:
    who = attribution()
    make_sessions(sessions, who, 3)
    failed = call_fails(
        lambda: sessions.List(session_pb2.ListRequest(attribution=who, page_size=-1)), INVALID
    )
    assert "page_size" in failed.field_violations
    failed = call_fails(
        lambda: sessions.List(session_pb2.ListRequest(attribution=who, page_token="garbage!")),
        INVALID,
    )
    assert "page_token" in failed.field_violations
    token = sessions.List(session_pb2.ListRequest(attribution=who, page_size=1)).next_page_token
    failed = call_fails(
        lambda: sessions.List(session_pb2.ListRequest(attribution=attribution(), page_token=token)),
        INVALID,
    )
    assert "page_token" in failed.field_violations
    negative = duration_pb2.Duration(seconds=-5)
    failed = call_fails(
        lambda: sessions.List(session_pb2.ListRequest(attribution=who, active_within=negative)),
        INVALID,
    )
    assert "active_within" in failed.field_violations
    call_fails(lambda: sessions.List(session_pb2.ListRequest()), INVALID)


def test_list_page_size_may_change_between_pages(sessions: SessionServiceStub) -> None:
    who = attribution()
    created = make_sessions(sessions, who, 4)
    first = sessions.List(session_pb2.ListRequest(attribution=who, page_size=1))
    rest = sessions.List(
        session_pb2.ListRequest(attribution=who, page_size=10, page_token=first.next_page_token)
    )
    assert [s.id for s in [*first.sessions, *rest.sessions]] == created[::-1]


def _messages(count: int) -> list[NewMessage]:
    return [
        NewMessage(
            role="user" if i % 2 == 0 else "assistant", content=f"message {i}", token_count=i
        )
        for i in range(count)
    ]


def test_list_messages_pages_in_sequence_order(
    sessions: SessionServiceStub, server: InProcessServer
) -> None:
    who = attribution()
    session = sessions.Reset(session_pb2.ResetRequest(attribution=who)).session
    assert server.server.store is not None
    server.run(server.server.store.append_messages("default", session.id, _messages(7)))
    seen: list[session_pb2.Message] = []
    token = ""
    while True:
        page = sessions.ListMessages(
            session_pb2.ListMessagesRequest(
                session_id=session.id, attribution=who, page_size=3, page_token=token
            )
        )
        assert len(page.messages) <= 3
        seen.extend(page.messages)
        token = page.next_page_token
        if not token:
            break
    assert [m.sequence for m in seen] == list(range(1, 8))
    assert [m.message.content for m in seen] == [f"message {i}" for i in range(7)]
    assert seen[1].message.role == common_pb2.ROLE_ASSISTANT
    assert seen[3].token_count == 3
    got = sessions.Get(session_pb2.GetRequest(session_id=session.id)).session
    assert got.message_count == 7
    deleted = sessions.Delete(session_pb2.DeleteRequest(session_id=session.id))
    assert deleted.deleted_message_count == 7
    call_fails(
        lambda: sessions.ListMessages(session_pb2.ListMessagesRequest(session_id=session.id)),
        grpc.StatusCode.NOT_FOUND,
    )


def test_list_messages_round_trips_tool_calls_and_parts(
    sessions: SessionServiceStub, server: InProcessServer
) -> None:
    session = sessions.Reset(session_pb2.ResetRequest(attribution=attribution())).session
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    }
    stored = [
        NewMessage(
            role="user",
            content_parts=[
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        ),
        NewMessage(role="assistant", tool_calls=[call]),
        NewMessage(role="tool", content="sunny", tool_call_id="call_1", name="weather"),
    ]
    assert server.server.store is not None
    server.run(server.server.store.append_messages("default", session.id, stored))
    page = sessions.ListMessages(session_pb2.ListMessagesRequest(session_id=session.id))
    user, assistant, tool = (m.message for m in page.messages)
    assert not user.HasField("content")
    assert user.content_parts[0]["text"] == "Weather?"
    assert json_format.MessageToDict(user.content_parts[1]) == {
        "type": "image_url",
        "image_url": {"url": "https://x/y.png"},
    }
    assert not assistant.HasField("content")
    assert assistant.tool_calls[0].id == "call_1"
    assert assistant.tool_calls[0].function.name == "weather"
    assert assistant.tool_calls[0].function.arguments == '{"city": "Oslo"}'
    assert tool.role == common_pb2.ROLE_TOOL
    assert tool.tool_call_id == "call_1"
    assert tool.content == "sunny"


def test_list_messages_errors(sessions: SessionServiceStub) -> None:
    session = sessions.Reset(session_pb2.ResetRequest(attribution=attribution())).session
    call_fails(
        lambda: sessions.ListMessages(
            session_pb2.ListMessagesRequest(session_id=session.id, attribution=attribution())
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    call_fails(
        lambda: sessions.ListMessages(session_pb2.ListMessagesRequest(session_id=new_id())),
        grpc.StatusCode.NOT_FOUND,
    )
    failed = call_fails(
        lambda: sessions.ListMessages(
            session_pb2.ListMessagesRequest(session_id=session.id, page_token="AAAA")
        ),
        INVALID,
    )
    assert "page_token" in failed.field_violations
    other = sessions.Reset(session_pb2.ResetRequest(attribution=attribution())).session
    empty = sessions.ListMessages(session_pb2.ListMessagesRequest(session_id=other.id))
    assert list(empty.messages) == []
    assert empty.next_page_token == ""


@pytest.mark.parametrize("page_size", [0, 5000])
def test_page_size_zero_and_huge_are_coerced(sessions: SessionServiceStub, page_size: int) -> None:
    who = attribution()
    make_sessions(sessions, who, 3)
    page = sessions.List(session_pb2.ListRequest(attribution=who, page_size=page_size))
    assert len(page.sessions) == 3


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"min_update_time": timestamp_pb2.Timestamp(seconds=-99_999_999_999)}, "min_update_time"),
        ({"min_update_time": timestamp_pb2.Timestamp(seconds=1, nanos=-5)}, "min_update_time"),
        ({"active_within": duration_pb2.Duration(seconds=0)}, "active_within"),
        ({"active_within": duration_pb2.Duration(seconds=-86400)}, "active_within"),
    ],
)
def test_list_rejects_out_of_range_filters(
    sessions: SessionServiceStub, filters: dict[str, object], field: str
) -> None:
    request = session_pb2.ListRequest(attribution=attribution(), **filters)  # type: ignore[arg-type]
    failed = call_fails(lambda: sessions.List(request), INVALID)
    assert field in failed.field_violations


def test_list_with_an_enormous_window_admits_everything(sessions: SessionServiceStub) -> None:
    who = attribution()
    created = make_sessions(sessions, who, 2)
    window = duration_pb2.Duration(seconds=315_576_000_000)  # the largest valid Duration
    listed = sessions.List(session_pb2.ListRequest(attribution=who, active_within=window))
    assert [s.id for s in listed.sessions] == created[::-1]


def test_a_session_of_large_messages_lists_in_pages_any_client_can_receive(
    server: InProcessServer, sessions: SessionServiceStub
) -> None:
    """Six messages of 900 kB each: a default page would be 5 MB, over gRPC's default 4 MiB
    receive limit; pages end early instead, and every message is read."""
    who = common_pb2.Attribution(entity_id=f"user-{new_id()}", process_id="big")
    session_id = new_id()
    sessions.Set(session_pb2.SetRequest(attribution=who, session_id=session_id))
    assert server.server.store is not None
    big = [NewMessage("user", f"{n}" + "x" * 900_000) for n in range(6)]
    server.run(server.server.store.append_messages("default", session_id, big))
    with grpc.insecure_channel(server.target) as default_limits:  # 4 MiB receive
        stub = SessionServiceStub(default_limits)
        read: list[str] = []
        token, pages = "", 0
        while True:
            page = stub.ListMessages(
                session_pb2.ListMessagesRequest(session_id=session_id, page_token=token)
            )
            read.extend(m.message.content[0] for m in page.messages)
            pages += 1
            token = page.next_page_token
            if not token:
                break
    assert read == [str(n) for n in range(6)]
    assert pages >= 3
