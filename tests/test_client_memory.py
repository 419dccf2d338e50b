"""Long-term memory through the Python client: `recall(...)` and `Memori(recall=True)`.

Each backend gets a server with `--memory` and the stand-in upstream; the openai clients are
the real SDK's, registered with a Memori. The shared server of the other tests runs without
memory, which is where the refusals are checked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from memori_client import AttributionRequired, Memori, MemoryOff, RecalledMemory, ServiceError
from memori_proto.v1 import memory_pb2_grpc
from openai.types.chat import ChatCompletion

from standin_upstream import StandinThread
from tests.chat_calls import MODEL, sent_messages
from tests.client_support import ask, async_client, sync_client, user
from tests.in_process import InProcessServer
from tests.memory_support import wait_indexed

DEAD = "127.0.0.1:9"


@pytest.fixture(scope="module")
def index_status(memory_server: InProcessServer) -> Iterator[memory_pb2_grpc.MemoryServiceStub]:
    with grpc.insecure_channel(memory_server.target) as channel:
        yield memory_pb2_grpc.MemoryServiceStub(channel)


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def talk(memori: Memori, *texts: str) -> str:
    """A new session of `memori` with one turn per text; returns its id."""
    client = sync_client()
    memori.reset_session().llm.register(client)
    for text in texts:
        ask(client, text)
    memori.llm.unregister(client)
    return memori.session.id


def test_recall_finds_what_an_earlier_session_said(
    memory_server: InProcessServer, index_status: memory_pb2_grpc.MemoryServiceStub
) -> None:
    with Memori(memory_server.target).attribution(new_user(), "agent") as memori:
        dog = talk(memori, "We adopted a beagle puppy last week, we called him Biscuit.")
        sister = talk(memori, "My sister Ana works as a marine biologist in Lisbon.")
        memori.reset_session()
        wait_indexed(index_status)
        found = memori.recall("What is the name of my dog?")
    assert found, "nothing recalled"
    best = found[0]
    assert isinstance(best, RecalledMemory)
    assert best.session_id == dog
    assert "Biscuit" in best.content
    assert best.content.startswith("user: ")
    assert best.sequences == (1, 2)  # the user message and the reply
    assert best.token_count > 0
    assert best.date.tzinfo == UTC
    assert abs(datetime.now(UTC) - best.date) < timedelta(minutes=10)
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert {m.session_id for m in found} <= {dog, sister}


def test_limit_and_token_budget_are_honoured(
    memory_server: InProcessServer, index_status: memory_pb2_grpc.MemoryServiceStub
) -> None:
    with Memori(memory_server.target).attribution(new_user(), "agent") as memori:
        for n in range(4):
            talk(memori, f"Reminder {n}: water the tomato plants on the balcony.")
        wait_indexed(index_status)
        assert len(memori.recall("tomato plants")) == 4
        assert len(memori.recall("tomato plants", 2)) == 2
        assert len(memori.recall("tomato plants", limit=1)) == 1
        one = memori.recall("tomato plants")[0].token_count
        within = memori.recall("tomato plants", token_budget=2 * one + 1)
        assert 1 <= len(within) <= 2
        assert sum(m.token_count for m in within) <= 2 * one + 1


def test_recall_is_scoped_to_the_entity_and_process(
    memory_server: InProcessServer, index_status: memory_pb2_grpc.MemoryServiceStub
) -> None:
    owner = new_user()
    with (
        Memori(memory_server.target).attribution(owner, "agent-a") as memori,
        Memori(memory_server.target).attribution(owner, "agent-b") as other_agent,
        Memori(memory_server.target).attribution(new_user(), "agent-a") as stranger,
        Memori(memory_server.target).attribution(owner) as every_agent,
    ):
        talk(memori, "My passport number ends in 4417 and expires in May.")
        talk(other_agent, "I keep my passport in the blue drawer.")
        wait_indexed(index_status)
        assert stranger.recall("passport number") == []
        mine = [m.content for m in memori.recall("passport")]
        assert any("4417" in text for text in mine)
        assert not any("drawer" in text for text in mine)
        assert len(every_agent.recall("passport")) == 2  # no process: all the entity's


def test_async_recall(
    memory_server: InProcessServer, index_status: memory_pb2_grpc.MemoryServiceStub
) -> None:
    who = new_user()

    async def tell() -> str:
        client = async_client()
        async with Memori(memory_server.target).attribution(who, "agent") as memori:
            memori.llm.register(client)
            reply = await client.chat.completions.create(
                model=MODEL, messages=[user("I'm allergic to hazelnuts, badly.")]
            )
            assert isinstance(reply, ChatCompletion)
            return memori.session.id

    async def recall() -> list[RecalledMemory]:
        async with Memori(memory_server.target).attribution(who, "agent") as memori:
            return await memori.aio.recall("Which nuts must I avoid?", 3)

    told = asyncio.run(tell())
    wait_indexed(index_status)
    found = asyncio.run(recall())
    assert [m.session_id for m in found] == [told]
    assert "hazelnuts" in found[0].content


def _recall_block(upstream: StandinThread, index: int = -1) -> str:
    """The recalled system message the upstream received first, or '' when there was none."""
    first = sent_messages(upstream, index)[0]
    content = str(first.get("content"))
    return content if first["role"] == "system" and "Memories from" in content else ""


def test_memori_recall_true_injects_into_every_kind_of_call(
    memory_server: InProcessServer,
    index_status: memory_pb2_grpc.MemoryServiceStub,
    upstream: StandinThread,
) -> None:
    who = new_user()
    with Memori(memory_server.target).attribution(who, "agent") as teller:
        talk(teller, "My favourite colour is deep ocean blue.")
    wait_indexed(index_status)
    question = "What colour do I like?"

    # A default Memori: a new session knows nothing of the earlier one.
    with Memori(memory_server.target).attribution(who, "agent") as plain:
        client = sync_client()
        plain.llm.register(client)
        upstream.clear()
        ask(client, question)
        assert _recall_block(upstream) == ""
        assert "ocean blue" not in str(sent_messages(upstream))

    with Memori(memory_server.target, recall=True).attribution(who, "agent") as memori:
        client = sync_client()
        memori.llm.register(client)
        upstream.clear()
        ask(client, question)
        block = _recall_block(upstream)
        assert "ocean blue" in block
        assert sent_messages(upstream)[-1] == {"role": "user", "content": question}
        # Never stored: the session holds what was sent and the reply.
        assert "ocean blue" not in str(memori.session.history())

        upstream.clear()
        with client.chat.completions.create(
            model=MODEL, messages=[user(question)], stream=True
        ) as stream:
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert "ocean blue" in _recall_block(upstream)

    async def through_async(**options: Any) -> tuple[str, str]:
        client = async_client()
        async with Memori(memory_server.target, **options).attribution(who, "agent") as memori:
            memori.llm.register(client)
            upstream.clear()
            await client.chat.completions.create(model=MODEL, messages=[user(question)])
            unary = _recall_block(upstream)
            upstream.clear()
            stream = await client.chat.completions.create(
                model=MODEL, messages=[user(question)], stream=True
            )
            async with stream:
                async for _ in stream:
                    pass
            return unary, _recall_block(upstream)

    unary, streamed = asyncio.run(through_async(recall=True))
    assert "ocean blue" in unary
    assert "ocean blue" in streamed
    assert asyncio.run(through_async(recall=False)) == ("", "")


def test_recall_limit_caps_the_injected_memories(
    memory_server: InProcessServer,
    index_status: memory_pb2_grpc.MemoryServiceStub,
    upstream: StandinThread,
) -> None:
    who = new_user()
    with Memori(memory_server.target).attribution(who, "agent") as teller:
        for n in range(3):
            talk(teller, f"Note {n}: the garage code is on the fridge magnet.")
    wait_indexed(index_status)
    # limit 1 first: the asking session becomes a memory too, once it is indexed.
    for limit, expected in ((1, 1), (None, 3)):
        with Memori(memory_server.target, recall=True, recall_limit=limit).attribution(
            who, "agent"
        ) as memori:
            client = sync_client()
            memori.llm.register(client)
            upstream.clear()
            ask(client, "Where is the garage code?")
            block = _recall_block(upstream)
            assert block.count("user: Note") == expected
            if limit is not None:
                assert block.count("\nuser: ") == limit


def test_memory_off_is_a_clear_error(server: InProcessServer, upstream: StandinThread) -> None:
    with Memori(server.target).attribution(new_user(), "agent") as memori:
        with pytest.raises(MemoryOff, match="--memory") as raised:
            memori.recall("anything")
        assert raised.value.code == "FAILED_PRECONDITION"
        assert raised.value.reason == "MEMORY_OFF"
        assert isinstance(raised.value, ServiceError)
        with pytest.raises(MemoryOff, match="--memory"):
            asyncio.run(memori.aio.recall("anything"))

    with Memori(server.target, recall=True).attribution(new_user(), "agent") as asks_recall:
        client = sync_client()
        asks_recall.llm.register(client)
        with pytest.raises(MemoryOff, match="--memory"):
            ask(client, "hi")
    # Saying no to recall is fine anywhere; so is not saying anything.
    no_recall: list[dict[str, Any]] = [{"recall": False}, {}]
    for options in no_recall:
        with Memori(server.target, **options).attribution(new_user(), "agent") as memori:
            client = sync_client()
            memori.llm.register(client)
            assert ask(client, "hi") == "echo: hi"


def test_recall_arguments_are_checked_before_any_call() -> None:
    memori = Memori(DEAD)
    with pytest.raises(AttributionRequired):
        memori.recall("anything")
    memori.attribution("user-1", "agent")
    with pytest.raises(TypeError, match="query"):
        memori.recall(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        memori.recall("x", 0)
    with pytest.raises(ValueError, match="token_budget"):
        memori.recall("x", token_budget=-5)
    with pytest.raises(TypeError, match="recall"):
        Memori(DEAD, recall="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recall_limit"):
        Memori(DEAD, recall=True, recall_limit=0)
    assert Memori(DEAD).recall_options is None
    options = Memori(DEAD, recall_limit=3, recall_token_budget=200).recall_options
    assert options is not None
    assert not options.HasField("enabled")  # the server's default decides
    assert (options.page_size, options.token_budget) == (3, 200)
    off = Memori(DEAD, recall=False).recall_options
    assert off is not None
    assert off.HasField("enabled")
    assert not off.enabled
