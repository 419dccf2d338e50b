"""The sync client through a real server: memory, arguments, streams, parse, threads."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import grpc
import openai
import pydantic
import pytest
from memori_client import ChunkStream, Memori, ServiceError, SessionAttributionMismatch
from memori_proto.v1.common_pb2 import Attribution
from memori_proto.v1.session_pb2 import ListRequest
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from standin_upstream import StandinThread
from tests.chat_calls import MODEL, sent_messages
from tests.client_support import ask, contents, sync_client, user
from tests.in_process import InProcessServer


def test_the_session_remembers_and_reset_forgets(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=[user("My birthday is May 15th")])
    assert isinstance(reply, ChatCompletion)
    assert reply.choices[0].message.content == "echo: My birthday is May 15th"
    ask(client, "When is my birthday?")
    assert contents(upstream) == [
        "My birthday is May 15th",
        "echo: My birthday is May 15th",
        "When is my birthday?",
    ]
    first = memori.session.id
    memori.reset_session()
    ask(client, "When is my birthday?")
    assert contents(upstream) == ["When is my birthday?"]
    memori.set_session(first)
    ask(client, "And my name?")
    assert "My birthday is May 15th" in contents(upstream)
    assert len(memori.session.history()) == 6


def test_every_create_argument_reaches_the_upstream(
    client: openai.OpenAI, upstream: StandinThread
) -> None:
    tool = {
        "type": "function",
        "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    client.chat.completions.create(  # type: ignore[call-overload]  # plain dicts, on purpose
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, user("Hi")],
        temperature=0.25,
        top_p=0.5,
        max_tokens=64,
        max_completion_tokens=32,
        stop="END",
        n=1,
        seed=7,
        tools=[tool],
        tool_choice="auto",
        response_format=response_format,
        user="end-user-9",
        frequency_penalty=0.1,
        presence_penalty=-0.5,
        logit_bias={"50256": -100},
        logprobs=True,
        top_logprobs=2,
        metadata={"team": "a"},
        parallel_tool_calls=False,
        reasoning_effort="low",
        service_tier="auto",
        extra_body={"vendor_option": {"depth": 3}},
    )
    body = upstream.requests[-1]["body"]
    assert isinstance(body, dict)
    expected = {
        "model": MODEL,
        "temperature": 0.25,
        "top_p": 0.5,
        "max_tokens": 64,
        "max_completion_tokens": 32,
        "stop": ["END"],
        "n": 1,
        "seed": 7,
        "tools": [tool],
        "tool_choice": "auto",
        "response_format": response_format,
        "user": "end-user-9",
        "frequency_penalty": 0.1,
        "presence_penalty": -0.5,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 2,
        "metadata": {"team": "a"},
        "parallel_tool_calls": False,
        "reasoning_effort": "low",
        "service_tier": "auto",
        "vendor_option": {"depth": 3},
    }
    assert {key: body.get(key) for key in expected} == expected
    assert "stream" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_tool_calls_round_trip_with_response_objects_passed_back(
    client: openai.OpenAI, upstream: StandinThread
) -> None:
    call: Any = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    }
    upstream.script({"reply": {"content": None, "tool_calls": [call]}})
    first = client.chat.completions.create(model=MODEL, messages=[user("Weather in Oslo?")])
    assert isinstance(first, ChatCompletion)
    message = first.choices[0].message
    assert message.tool_calls
    assert message.tool_calls[0].id == "call_1"
    # Apps append the response message object itself, then the tool result.
    client.chat.completions.create(
        model=MODEL,
        messages=[
            message,  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    )
    sent = sent_messages(upstream)
    assert [item["role"] for item in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_streams_yield_chunks_and_store_the_turn(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=[user("tell me a story")], stream=True
    )
    assert isinstance(stream, ChunkStream)
    with stream:
        chunks = list(stream)
    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: tell me a story"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert memori.session.history()[-1] == {"role": "assistant", "content": text}
    assert upstream.requests[-1]["body"]["stream"] is True


def test_closing_a_stream_early_stores_nothing(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    upstream.script({"reply": {"content": " ".join(["word"] * 10)}, "chunk_delay": 0.05})
    with client.chat.completions.create(
        model=MODEL, messages=[user("a long story please")], stream=True
    ) as stream:
        next(iter(stream))
    time.sleep(1.0)  # twice what the whole stream takes: it would be stored by now
    assert memori.session.history() == []


def test_the_sdk_stream_helper_works_through_the_service(
    memori: Memori, client: openai.OpenAI
) -> None:
    with client.chat.completions.stream(model=MODEL, messages=[user("helper")]) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "echo: helper"
    assert final.choices[0].message.content == "echo: helper"
    assert memori.session.history()[-1]["content"] == "echo: helper"


class Answer(pydantic.BaseModel):
    city: str
    sunny: bool


def test_parse_returns_the_parsed_model(client: openai.OpenAI, upstream: StandinThread) -> None:
    upstream.script({"reply": {"content": json.dumps({"city": "Oslo", "sunny": True})}})
    parsed = client.chat.completions.parse(
        model=MODEL, messages=[user("Weather?")], response_format=Answer
    )
    assert parsed.choices[0].message.parsed == Answer(city="Oslo", sunny=True)
    sent = upstream.requests[-1]["body"]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Answer"


def test_copies_and_the_beta_alias_are_routed_too(
    client: openai.OpenAI, upstream: StandinThread
) -> None:
    ask(client, "remember 42")
    ask(client.with_options(timeout=20), "what number?")
    assert "remember 42" in contents(upstream)
    client.beta.chat.completions.create(model=MODEL, messages=[user("and now?")])
    assert "what number?" in contents(upstream)


def test_other_client_methods_are_untouched(memori: Memori, upstream: StandinThread) -> None:
    direct = openai.OpenAI(api_key="k", base_url=upstream.base_url, max_retries=0)
    memori.llm.register(direct)
    # Not chat completions: straight to the client's own base URL over HTTP, as before.
    assert [model.id for model in direct.models.list()]
    with pytest.raises(openai.NotFoundError, match="Unknown request URL"):
        direct.embeddings.create(model="text-embedding-3-small", input="hi")
    assert "create" in direct.chat.completions.__dict__  # rebound on this instance only
    assert not direct.models.__dict__.keys() & {"list", "retrieve"}


def test_threads_with_their_own_memori_objects_never_mix(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    failures: list[BaseException] = []
    histories: dict[int, list[str]] = {}

    def conversation(number: int) -> None:
        try:
            own = sync_client()
            with Memori(server.target).attribution(f"thread-user-{number}", "threads") as memori:
                memori.llm.register(own)
                for turn in range(4):
                    ask(own, f"user {number} turn {turn}")
                histories[number] = [str(m["content"]) for m in memori.session.history()]
        except BaseException as error:  # reported below, with the thread's number
            failures.append(error)

    threads = [threading.Thread(target=conversation, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    for number, history in histories.items():
        assert history == [
            text
            for turn in range(4)
            for text in (f"user {number} turn {turn}", f"echo: user {number} turn {turn}")
        ]
    assert len(histories) == 8


def test_a_ready_channel_is_used_and_left_open(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    with grpc.insecure_channel(server.target) as channel:
        own = sync_client()
        with Memori("ignored:1", channel=channel).attribution(f"user-{uuid.uuid4()}") as memori:
            memori.llm.register(own)
            assert ask(own, "through my channel") == "echo: through my channel"
        # Still open after close(): the app owns it.
        SessionServiceStub(channel).List(ListRequest(attribution=Attribution(entity_id="x")))


def test_the_default_timeout_applies_unless_a_call_sets_its_own(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    own = sync_client()
    with Memori(server.target, timeout=0.3).attribution(f"user-{uuid.uuid4()}") as memori:
        memori.llm.register(own)
        upstream.script({"delay": 1.0})
        with pytest.raises(openai.APITimeoutError):
            ask(own, "too slow")
        upstream.script({"delay": 0.5})
        assert ask(own, "patient", timeout=10) == "echo: patient"


def test_session_calls_find_list_read_and_delete(
    server: InProcessServer, memori: Memori, client: openai.OpenAI
) -> None:
    assert memori.session.resume_current() is False
    ask(client, "first session")
    first = memori.session.id
    ask(client.with_options(), "still the first")
    memori.reset_session()
    ask(client, "second session")
    second = memori.session.id
    recent = memori.session.recent(within=timedelta(hours=1))
    assert [info.id for info in recent] == [second, first]  # newest activity first
    assert [info.message_count for info in recent] == [2, 4]
    assert recent[0].entity_id == memori.call_identity()[1].entity_id
    memori.reset_session()
    assert memori.session.resume_current() is True
    assert memori.session.id == second
    assert memori.session.delete() == 2
    assert [info.id for info in memori.session.recent()] == [first]
    # Another attribution cannot read this one's session.
    with Memori(server.target).attribution(f"user-{uuid.uuid4()}") as stranger:
        stranger.set_session(first)
        with pytest.raises(SessionAttributionMismatch):
            stranger.session.history()


def test_session_calls_to_an_unreachable_service_raise_service_error() -> None:
    memori = Memori("127.0.0.1:9", timeout=2).attribution("someone")
    with memori, pytest.raises(ServiceError) as caught:
        memori.session.recent()
    assert caught.value.code == "UNAVAILABLE"


def test_azure_clients_register_like_any_openai_client(
    memori: Memori, upstream: StandinThread
) -> None:
    azure = openai.AzureOpenAI(
        api_key="unused",
        azure_endpoint="http://127.0.0.1:9",
        api_version="2024-10-21",
        max_retries=0,
    )
    memori.llm.register(azure)
    assert ask(azure, "via azure") == "echo: via azure"
    assert upstream.requests[-1]["body"]["model"] == MODEL


def test_history_gives_content_parts_back_as_sent(memori: Memori, client: openai.OpenAI) -> None:
    parts: Any = [
        {"type": "text", "text": "look"},
        # Inline: the server checks that a remote URL's host resolves to public addresses.
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "text", "text": "size", "extra": {"width": 640, "ratio": 1.5}},
    ]
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": parts}])
    assert memori.session.history()[0] == {"role": "user", "content": parts}
