"""Long-term memory through the real server: indexing, MemoryService, recall, erasure.

Each backend gets a server with `--memory` and the stand-in upstream; the shared server of
the other tests runs without memory, which is how it stays opt-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from memori_proto.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    common_pb2,
    entity_pb2,
    entity_pb2_grpc,
    memory_pb2,
    memory_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)

from standin_upstream import StandinThread
from tests.chat_calls import chat_request, complete, message, sent_messages, stored, user
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.memory_support import wait_indexed
from tests.rpc_errors import call_fails


@pytest.fixture(scope="module")
def memory_channel(memory_server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(memory_server.target) as channel:
        yield channel


@pytest.fixture
def memory(memory_channel: grpc.Channel) -> memory_pb2_grpc.MemoryServiceStub:
    return memory_pb2_grpc.MemoryServiceStub(memory_channel)


@pytest.fixture
def chat(memory_channel: grpc.Channel) -> chat_pb2_grpc.ChatServiceStub:
    return chat_pb2_grpc.ChatServiceStub(memory_channel)


@pytest.fixture
def sessions(memory_channel: grpc.Channel) -> session_pb2_grpc.SessionServiceStub:
    return session_pb2_grpc.SessionServiceStub(memory_channel)


def search(
    memory: memory_pb2_grpc.MemoryServiceStub,
    who: common_pb2.Attribution,
    query: str,
    **fields: Any,
) -> list[memory_pb2.Memory]:
    response = memory.Search(memory_pb2.SearchRequest(attribution=who, query=query, **fields))
    return list(response.memories)


def talk(chat: chat_pb2_grpc.ChatServiceStub, who: common_pb2.Attribution, *texts: str) -> str:
    """One new session with a turn per text; returns its id."""
    session_id = new_id()
    for text in texts:
        complete(chat, who, user(text), session_id=session_id)
    return session_id


FACTS = (
    "We adopted a beagle puppy last week, we called him Biscuit.",
    "I am learning to play the cello on weekends, slowly.",
    "My sister Ana works as a marine biologist in Lisbon.",
)


def test_search_finds_what_earlier_sessions_said(
    chat: chat_pb2_grpc.ChatServiceStub, memory: memory_pb2_grpc.MemoryServiceStub
) -> None:
    who = attribution()
    ids = [talk(chat, who, fact) for fact in FACTS]
    wait_indexed(memory)
    found = search(memory, who, "What is the name of my dog?")
    assert found, "nothing found"
    best = found[0]
    assert best.session_id == ids[0]
    assert "Biscuit" in best.text
    assert best.text.startswith("user: ")
    assert list(best.sequences) == [1, 2]  # the user message and the reply
    assert best.token_count > 0
    assert best.create_time.seconds > 0
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    sister = search(memory, who, "which city does my sister live in")
    assert sister[0].session_id == ids[2]


def test_search_is_per_entity_and_process(
    chat: chat_pb2_grpc.ChatServiceStub, memory: memory_pb2_grpc.MemoryServiceStub
) -> None:
    who = attribution("agent-a")
    same_user_other_agent = common_pb2.Attribution(entity_id=who.entity_id, process_id="agent-b")
    stranger = attribution("agent-a")
    talk(chat, who, "My passport number ends in 4417 and expires in May.")
    talk(chat, same_user_other_agent, "I keep my passport in the blue drawer.")
    wait_indexed(memory)
    assert search(memory, stranger, "passport") == []
    texts = [m.text for m in search(memory, who, "passport")]
    assert any("4417" in text for text in texts)
    assert not any("drawer" in t for t in texts)
    whole_entity = common_pb2.Attribution(entity_id=who.entity_id)  # every process
    assert len(search(memory, whole_entity, "passport")) == 2


def test_page_size_budget_and_exclusion(
    chat: chat_pb2_grpc.ChatServiceStub, memory: memory_pb2_grpc.MemoryServiceStub
) -> None:
    who = attribution()
    ids = [
        talk(chat, who, f"Reminder {n}: water the tomato plants on the balcony.") for n in range(4)
    ]
    wait_indexed(memory)
    assert len(search(memory, who, "tomato plants")) == 4
    assert len(search(memory, who, "tomato plants", page_size=2)) == 2
    one = search(memory, who, "tomato plants")[0].token_count
    within = search(memory, who, "tomato plants", token_budget=2 * one + 1)
    assert 1 <= len(within) <= 2
    assert sum(m.token_count for m in within) <= 2 * one + 1
    assert search(memory, who, "tomato plants", token_budget=1) == []
    others = search(memory, who, "tomato plants", exclude_session_id=ids[0])
    assert ids[0] not in {m.session_id for m in others}
    assert len(others) == 3


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"query": "x"}, "attribution.entity_id"),
        ({"attribution": common_pb2.Attribution(entity_id="u"), "query": " "}, "query"),
        (
            {"attribution": common_pb2.Attribution(entity_id="u"), "query": "x" * 4097},
            "query",
        ),
        (
            {"attribution": common_pb2.Attribution(entity_id="u"), "query": "x", "page_size": -1},
            "page_size",
        ),
        (
            {
                "attribution": common_pb2.Attribution(entity_id="u"),
                "query": "x",
                "exclude_session_id": "nope",
            },
            "exclude_session_id",
        ),
    ],
)
def test_search_validates(
    memory: memory_pb2_grpc.MemoryServiceStub, fields: dict[str, Any], field: str
) -> None:
    failed = call_fails(
        lambda: memory.Search(memory_pb2.SearchRequest(**fields)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert field in failed.field_violations


def recall_on(**fields: Any) -> chat_pb2.RecallOptions:
    return chat_pb2.RecallOptions(enabled=True, **fields)


def test_recall_injects_earlier_sessions_and_stores_nothing_of_them(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    first = talk(chat, who, "My favourite colour is deep ocean blue.")
    wait_indexed(memory)
    session_id = new_id()
    response = chat.Complete(
        chat_pb2.CompleteRequest(
            attribution=who,
            session_id=session_id,
            request=chat_request(message("system", "Be brief."), user("What colour do I like?")),
            recall=recall_on(),
        ),
        timeout=30,
    )
    sent = sent_messages(upstream)
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["role"] == "system"
    assert "ocean blue" in sent[1]["content"]
    assert sent[-1] == {"role": "user", "content": "What colour do I like?"}
    assert [m.session_id for m in response.recalled_memories] == [first]
    assert [role for _, role, _ in stored(sessions, session_id)] == ["user", "assistant"]
    assert "ocean blue" not in str(stored(sessions, session_id))
    # The next call's history is the session's own: no recalled block, unless asked again.
    complete(chat, who, user("And my name?"), session_id=session_id)
    assert "ocean blue" not in str(sent_messages(upstream))


def test_recall_streams_the_memories_first(
    chat: chat_pb2_grpc.ChatServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    first = talk(chat, who, "I'm allergic to hazelnuts, badly.")
    wait_indexed(memory)
    responses = list(
        chat.StreamComplete(
            chat_pb2.StreamCompleteRequest(
                attribution=who,
                session_id=new_id(),  # not the current session, whose history travels anyway
                request=chat_request(user("Any nuts I must avoid?")),
                recall=recall_on(page_size=1),
            ),
            timeout=30,
        )
    )
    assert [m.session_id for m in responses[0].recalled_memories] == [first]
    assert "hazelnuts" in str(sent_messages(upstream)[0])


def test_without_recall_a_reset_forgets(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
    upstream: StandinThread,
) -> None:
    """The seed's promise holds with memory on: recall is off unless asked for."""
    who = attribution()
    complete(chat, who, user("My favorite color is blue"))
    wait_indexed(memory)
    sessions.Reset(session_pb2.ResetRequest(attribution=who))
    response = complete(chat, who, user("What's my favorite color?"))
    assert "blue" not in str(sent_messages(upstream))
    assert not response.recalled_memories
    off = chat.Complete(
        chat_pb2.CompleteRequest(
            attribution=who,
            request=chat_request(user("Colour again?")),
            recall=chat_pb2.RecallOptions(enabled=False),
        ),
        timeout=30,
    )
    assert not off.recalled_memories
    assert "blue" not in str(sent_messages(upstream))


def test_deleting_and_erasing_remove_memories(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
    memory_channel: grpc.Channel,
) -> None:
    who = attribution()
    doomed = talk(chat, who, "The alarm code for the studio is 9-3-1-7.")
    kept = talk(chat, who, "The studio alarm was replaced in June.")
    wait_indexed(memory)
    assert {m.session_id for m in search(memory, who, "studio alarm")} == {doomed, kept}
    sessions.Delete(session_pb2.DeleteRequest(session_id=doomed))
    assert {m.session_id for m in search(memory, who, "studio alarm code")} == {kept}
    erased = entity_pb2_grpc.EntityServiceStub(memory_channel).Erase(
        entity_pb2.EraseRequest(entity_id=who.entity_id)
    )
    assert erased.deleted_memory_count == 1
    assert search(memory, who, "studio alarm") == []


def test_memory_is_off_unless_the_server_turns_it_on(
    channel: grpc.Channel, upstream: StandinThread
) -> None:
    stub = memory_pb2_grpc.MemoryServiceStub(channel)
    request = memory_pb2.SearchRequest(attribution=attribution(), query="anything")
    off = grpc.StatusCode.FAILED_PRECONDITION
    failed = call_fails(lambda: stub.Search(request), off)
    assert "--memory" in failed.message
    assert failed.reason == "MEMORY_OFF"
    call_fails(lambda: stub.GetIndexStatus(memory_pb2.GetIndexStatusRequest()), off)
    asks_recall = chat_pb2.CompleteRequest(
        attribution=attribution(), request=chat_request(user("hi")), recall=recall_on()
    )
    call_fails(lambda: chat_pb2_grpc.ChatServiceStub(channel).Complete(asks_recall), off)


def test_turning_memory_on_indexes_what_was_stored_before(
    fresh_database_url: str, upstream: StandinThread
) -> None:
    """The watermark lives in the database: a server started later (or restarted) indexes
    what is not yet indexed, and only that."""
    who = attribution()
    plain = InProcessServer(make_settings(fresh_database_url, upstream_base_url=upstream.base_url))
    try:
        with grpc.insecure_channel(plain.target) as channel:
            talk(chat_pb2_grpc.ChatServiceStub(channel), who, "I parked the van on level 3.")
    finally:
        plain.close()
    settings = make_settings(
        fresh_database_url,
        upstream_base_url=upstream.base_url,
        memory=True,
        memory_index_interval=0.2,
    )
    for _ in range(2):  # the second start finds nothing to do
        running = InProcessServer(settings)
        try:
            with grpc.insecure_channel(running.target) as channel:
                stub = memory_pb2_grpc.MemoryServiceStub(channel)
                wait_indexed(stub)
                status = stub.GetIndexStatus(memory_pb2.GetIndexStatusRequest())
                assert status.indexed_message_count == 2
                assert "level 3" in search(stub, who, "where is the van parked")[0].text
        finally:
            running.close()


ODD_QUERIES = (
    'dog" OR scope : *',
    "NEAR(dog cat) AND NOT -x ^y",
    "dog's & cat | !bird <-> (fish)",
    "\U0001f436\U0001f431 \u202e \x00 nul",
    "a" * 4096,
    "the and of to",  # nothing but stopwords: dense search only
    "don t s whom",  # words to us, stopwords to PostgreSQL: its full-text query is empty
    "日本語のテキスト 检索",
    "\\' ; DROP TABLE memory_passages; --",
)


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_any_query_text_is_searched_safely(
    chat: chat_pb2_grpc.ChatServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
    query: str,
) -> None:
    """Query text is words, never syntax: full-text operators, quotes and SQL do nothing."""
    who = attribution()
    talk(chat, who, "Our dog and cat both like fish.")
    wait_indexed(memory)
    found = search(memory, who, query)
    assert len(found) <= 1
    assert all(m.session_id for m in found)


def test_a_reply_stored_later_joins_its_passage_and_dates_are_kept(
    sessions: session_pb2_grpc.SessionServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
) -> None:
    """An imported user message alone is a passage; its reply, appended later, rebuilds that
    passage rather than starting one that lacks the question. Imported dates are memory's."""
    who = attribution()
    session_id = new_id()
    when = timestamp_pb2.Timestamp(seconds=1_700_000_000)  # 2023-11-14

    def append(*messages: common_pb2.ChatMessage) -> None:
        sessions.AppendMessages(
            session_pb2.AppendMessagesRequest(
                attribution=who, session_id=session_id, messages=messages, create_time=when
            )
        )

    append(user("I finally bought the red gravel bike I wanted."))
    wait_indexed(memory)
    assert [list(m.sequences) for m in search(memory, who, "gravel bike")] == [[1]]
    append(message("assistant", "Congratulations! Which brand did you pick?"))
    append(message("system", "Internal note."), user("Unrelated: the boiler is making noise."))
    wait_indexed(memory)
    found = search(memory, who, "gravel bike brand")
    bike = [m for m in found if "gravel" in m.text]
    assert [list(m.sequences) for m in bike] == [[1, 2]]
    assert "Congratulations" in bike[0].text
    assert "Internal note" not in str(found)
    assert bike[0].create_time.seconds == when.seconds
    boiler = search(memory, who, "boiler noise")[0]
    assert list(boiler.sequences) == [4]


def test_vectors_held_between_searches_follow_new_and_deleted_passages(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    memory: memory_pb2_grpc.MemoryServiceStub,
) -> None:
    """A search holds the entity's vectors; the next one sees passages indexed since (read
    alone, appended) and never one deleted since (everything read again)."""
    who = attribution()
    first = talk(chat, who, "The spare key is under the green flower pot.")
    wait_indexed(memory)
    assert {m.session_id for m in search(memory, who, "where is the spare key")} == {first}
    second = talk(chat, who, "I moved the spare key to the garage shelf.")
    wait_indexed(memory)
    assert {m.session_id for m in search(memory, who, "where is the spare key")} == {
        first,
        second,
    }
    sessions.Delete(session_pb2.DeleteRequest(session_id=first))
    assert {m.session_id for m in search(memory, who, "where is the spare key")} == {second}
