"""ChatService's handlers alone, with a fake upstream and no gRPC: the path of one call from
the handler to the commit, on each database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
import pytest
from memori_proto.v1 import chat_pb2, common_pb2
from memori_server.chat.upstream_errors import broken_stream, from_status_error
from memori_server.config import Settings
from memori_server.errors import ServiceError
from memori_server.foreground import Foreground
from memori_server.services.chat_service import ChatService, PreparedCall
from memori_server.services.tenancy import DEFAULT_TENANT

from tests.chat_calls import chat_request, message, user
from tests.conftest import make_settings
from tests.storage_support import Stores


class FakeUpstream:
    """Records each request body; answers an echo, or what the test scripted."""

    default_timeout = 30.0

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail: ServiceError | None = None
        self.stream_chunks: int | None = None  # a stream that breaks off after this many

    async def complete(self, body: bytes, upstream_timeout: float) -> tuple[str, dict[str, Any]]:
        request = self._record(body)
        if self.fail is not None:
            raise self.fail
        reply = {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": self._echo(request)},
                }
            ],
        }
        return json.dumps(reply), reply

    async def stream(
        self, body: bytes, upstream_timeout: float
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        request = self._record(body)
        assert request["stream"] is True
        words = self._echo(request).split(" ")
        for index, word in enumerate(words):
            if self.stream_chunks is not None and index == self.stream_chunks:
                raise broken_stream("cut by the test")
            last = index == len(words) - 1
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": word if index == 0 else f" {word}"},
                        "finish_reason": "stop" if last else None,
                    }
                ],
            }
            yield json.dumps(chunk), chunk

    def _record(self, body: bytes) -> dict[str, Any]:
        request: dict[str, Any] = json.loads(body)
        self.bodies.append(request)
        return request

    @staticmethod
    def _echo(request: dict[str, Any]) -> str:
        return f"echo: {request['messages'][-1]['content']}"


class Rpc:
    """The part of a gRPC servicer context the handlers use."""

    def time_remaining(self) -> float | None:
        return 30.0


@pytest.fixture(scope="module")
def stores(fresh_module_database_url: str) -> Iterator[Stores]:
    opened = Stores(fresh_module_database_url, fast_paths=True)
    yield opened
    opened.close()


@pytest.fixture
def service(stores: Stores) -> tuple[ChatService, FakeUpstream]:
    upstream = FakeUpstream()
    settings: Settings = make_settings("sqlite:///unused.db")
    handlers = ChatService(
        stores.turns,
        stores.sessions,
        stores.requests,
        upstream,  # type: ignore[arg-type]  # a fake with the same methods
        settings,
    )
    return handlers, upstream


def attribution() -> common_pb2.Attribution:
    return common_pb2.Attribution(entity_id=f"user-{uuid.uuid4().hex[:8]}", process_id="unit")


def complete(
    stores: Stores,
    handlers: ChatService,
    who: common_pb2.Attribution,
    *messages: Any,
    **fields: Any,
) -> chat_pb2.CompleteResponse:
    request = chat_pb2.CompleteRequest(attribution=who, request=chat_request(*messages), **fields)
    return stores.run(handlers.Complete(request, Rpc()))  # type: ignore[arg-type]


def stream(
    stores: Stores, handlers: ChatService, who: common_pb2.Attribution, *messages: Any
) -> list[chat_pb2.StreamCompleteResponse]:
    request = chat_pb2.StreamCompleteRequest(attribution=who, request=chat_request(*messages))

    async def collect() -> list[chat_pb2.StreamCompleteResponse]:
        return [item async for item in handlers.StreamComplete(request, Rpc())]  # type: ignore[arg-type]

    return stores.run(collect())


def test_instructions_then_history_then_the_new_message_and_the_turn_is_stored(
    stores: Stores, service: tuple[ChatService, FakeUpstream]
) -> None:
    handlers, upstream = service
    who = attribution()
    first = complete(stores, handlers, who, user("My dog is Rex"))
    second = complete(stores, handlers, who, message("system", "Be brief."), user("Name?"))
    assert second.session.id == first.session.id
    assert second.session.message_count == 4  # the system message is not stored
    assert upstream.bodies[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My dog is Rex"},
        {"role": "assistant", "content": "echo: My dog is Rex"},
        {"role": "user", "content": "Name?"},
    ]


def test_a_resent_history_is_neither_sent_twice_nor_stored_twice(
    stores: Stores, service: tuple[ChatService, FakeUpstream]
) -> None:
    handlers, upstream = service
    who = attribution()
    complete(stores, handlers, who, user("one"))
    again = complete(
        stores, handlers, who, user("one"), message("assistant", "echo: one"), user("two")
    )
    assert again.session.message_count == 4
    assert [m["content"] for m in upstream.bodies[-1]["messages"]] == ["one", "echo: one", "two"]


def test_an_upstream_failure_stores_nothing_and_frees_the_request_id(
    stores: Stores, service: tuple[ChatService, FakeUpstream]
) -> None:
    handlers, upstream = service
    who, request_id = attribution(), str(uuid.uuid4())
    upstream.fail = broken_stream("no answer")
    with pytest.raises(ServiceError):
        complete(stores, handlers, who, user("lost"), request_id=request_id)
    stores.run(asyncio.sleep(0.05))  # the claim is released in the background
    upstream.fail = None
    retried = complete(stores, handlers, who, user("lost"), request_id=request_id)
    assert not retried.replayed
    assert retried.session.message_count == 2  # nothing of the failed attempt
    replayed = complete(stores, handlers, who, user("lost"), request_id=request_id)
    assert replayed.replayed
    assert len(upstream.bodies) == 2  # the replay did not call the upstream


def test_a_refusal_keeps_the_upstreams_status(
    stores: Stores, service: tuple[ChatService, FakeUpstream]
) -> None:
    handlers, upstream = service
    response = httpx2.Response(
        429, headers={"retry-after": "2"}, request=httpx2.Request("POST", "http://x")
    )
    upstream.fail = from_status_error(
        openai.RateLimitError("slow down", response=response, body={"message": "slow down"})
    )
    with pytest.raises(ServiceError) as caught:
        complete(stores, handlers, attribution(), user("x"))
    assert caught.value.code.name == "RESOURCE_EXHAUSTED"


def test_a_stream_is_stored_when_it_finishes_and_not_when_it_breaks(
    stores: Stores, service: tuple[ChatService, FakeUpstream]
) -> None:
    handlers, upstream = service
    who = attribution()
    responses = stream(stores, handlers, who, user("tell me a story"))
    text = "".join(r.chunk.choices[0].delta.content for r in responses[1:])
    assert text == "echo: tell me a story"
    session_id = responses[0].session.id
    upstream.stream_chunks = 2
    with pytest.raises(ServiceError):
        stream(stores, handlers, who, user("and another"))
    stored = stores.run(stores.sessions.get(DEFAULT_TENANT, session_id))
    assert stored.message_count == 2


def test_a_completion_is_in_the_foreground_except_while_it_waits_for_the_upstream(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What background work (the memory indexer) gives way to: the call's own work, not its
    wait for the upstream or its relay of a stream."""
    foreground = Foreground()
    upstream = FakeUpstream()
    handlers = ChatService(
        stores.turns,
        stores.sessions,
        stores.requests,
        upstream,  # type: ignore[arg-type]
        make_settings("sqlite:///unused.db"),
        foreground=foreground,
    )
    seen: list[tuple[str, bool]] = []

    def watched(name: str, method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, foreground.busy))
            return await method(*args, **kwargs)

        return call

    def watched_stream(method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async for item in method(*args, **kwargs):
                seen.append(("stream chunk", foreground.busy))
                yield item

        return call

    monkeypatch.setattr(stores.turns, "load", watched("load", stores.turns.load))
    monkeypatch.setattr(stores.turns, "store_turn", watched("store", stores.turns.store_turn))
    monkeypatch.setattr(upstream, "complete", watched("upstream", upstream.complete))
    monkeypatch.setattr(upstream, "stream", watched_stream(upstream.stream))
    who = attribution()
    complete(stores, handlers, who, user("hello"))
    assert seen == [("load", True), ("upstream", False), ("store", True)]
    assert not foreground.busy
    seen.clear()
    stream(stores, handlers, who, user("and again"))
    assert seen[:1] == [("load", True)]
    assert seen[-1] == ("store", True)
    assert {busy for name, busy in seen if name == "stream chunk"} == {False}
    assert not foreground.busy
    upstream.fail = broken_stream("gone")  # a failed call leaves the foreground too
    with pytest.raises(ServiceError):
        complete(stores, handlers, who, user("fails"))
    assert not foreground.busy


def test_a_claimed_call_keeps_every_other_field() -> None:
    """`claimed_by` builds the call field by field: a field added later must be carried."""
    values: dict[str, Any] = {field.name: object() for field in dataclasses.fields(PreparedCall)}
    call = PreparedCall(**values)
    claimed = call.claimed_by("owner-token")
    assert claimed == dataclasses.replace(call, claim_owner="owner-token")
