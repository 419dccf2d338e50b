"""The AsyncOpenAI client through a real server: calls, streams, errors, concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import openai
import pytest
from memori_client import AsyncChunkStream, Memori
from openai.types.chat import ChatCompletion

from standin_upstream import StandinThread
from tests.chat_calls import MODEL
from tests.client_support import async_client, contents, user
from tests.in_process import InProcessServer


async def _ask(client: openai.AsyncOpenAI, text: str) -> str:
    reply = await client.chat.completions.create(model=MODEL, messages=[user(text)])
    assert isinstance(reply, ChatCompletion)
    return reply.choices[0].message.content or ""


def test_async_calls_remember_and_stream(server: InProcessServer, upstream: StandinThread) -> None:
    upstream.clear()

    async def conversation() -> None:
        client = async_client()
        async with Memori(server.target).attribution("async-user", "agent") as memori:
            memori.llm.register(client)
            assert await _ask(client, "My favourite colour is blue") == (
                "echo: My favourite colour is blue"
            )
            stream = await client.chat.completions.create(
                model=MODEL, messages=[user("What is my favourite colour?")], stream=True
            )
            assert isinstance(stream, AsyncChunkStream)
            async with stream:
                text = "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )
            assert text == "echo: What is my favourite colour?"
            assert contents(upstream)[0] == "My favourite colour is blue"
            async with client.chat.completions.stream(
                model=MODEL, messages=[user("helper")]
            ) as helper:
                final = await helper.get_final_completion()
            assert final.choices[0].message.content == "echo: helper"
            assert len(memori.session.history()) == 6

    asyncio.run(conversation())


def test_async_errors_are_openai_exceptions(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()

    async def failing() -> None:
        client = async_client()
        async with Memori(server.target).attribution("async-errors") as memori:
            memori.llm.register(client)
            upstream.script({"fail": {"status": 404, "message": "no such model"}})
            with pytest.raises(openai.NotFoundError, match="no such model"):
                await _ask(client, "hi")
            upstream.script({"cut_after_chunks": 1})
            stream = await client.chat.completions.create(
                model=MODEL, messages=[user("a b c")], stream=True
            )
            with pytest.raises(openai.APIConnectionError):
                async for _ in stream:
                    pass
            assert memori.session.history() == []

    asyncio.run(failing())


def test_concurrent_tasks_with_their_own_memori_objects_never_mix(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()

    async def conversation(number: int) -> list[str]:
        client = async_client()
        async with Memori(server.target).attribution(f"task-user-{number}", "tasks") as memori:
            memori.llm.register(client)
            for turn in range(3):
                await _ask(client, f"task {number} turn {turn}")
            return [str(m["content"]) for m in memori.session.history()]

    async def everyone() -> list[list[str]]:
        return await asyncio.gather(*(conversation(n) for n in range(10)))

    for number, history in enumerate(asyncio.run(everyone())):
        assert history == [
            text
            for turn in range(3)
            for text in (f"task {number} turn {turn}", f"echo: task {number} turn {turn}")
        ]


def test_one_memori_serves_one_client_across_event_loops(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    client = async_client()
    memori = Memori(server.target).attribution("loops-user").llm.register(client)
    asyncio.run(_ask(client, "from the first loop"))
    asyncio.run(_ask(client, "from the second loop"))  # a grpc.aio channel per loop
    assert contents(upstream)[0] == "from the first loop"
    memori.close()


def test_session_calls_for_event_loops(server: InProcessServer, upstream: StandinThread) -> None:
    upstream.clear()

    async def lifecycle() -> None:
        client = async_client()
        async with Memori(server.target).attribution(f"aio-{uuid.uuid4()}", "agent") as memori:
            memori.llm.register(client)
            assert await memori.session.aio.resume_current() is False  # nothing yet
            assert await memori.session.aio.history() == []
            await _ask(client, "remember me")
            first = memori.session.id
            memori.reset_session()
            assert await memori.session.aio.resume_current() is True
            assert memori.session.id == first  # the current session, found by attribution
            assert [m["content"] for m in await memori.session.aio.history()] == [
                "remember me",
                "echo: remember me",
            ]
            assert [s.id for s in await memori.session.aio.recent(timedelta(hours=1))] == [first]
            assert await memori.session.aio.delete() == 2
            assert memori.session.id != first
            assert await memori.session.aio.recent() == []

    asyncio.run(lifecycle())
