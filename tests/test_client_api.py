"""The Memori chaining API itself: no RPC happens here (the target is a dead port)."""

from __future__ import annotations

import uuid

import openai
import pytest
from memori_client import (
    AttributionRequired,
    ClientAlreadyRegistered,
    Memori,
    MemoriClosed,
    SessionManager,
    UnsupportedCall,
)

from tests.client_support import sync_client, user

DEAD = "127.0.0.1:9"


def _is_uuid4(text: str) -> bool:
    return uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text


def test_constructor_makes_no_call_and_has_a_session_at_once() -> None:
    memori = Memori(DEAD)
    assert _is_uuid4(memori.session.id)
    assert Memori(DEAD).session.id != memori.session.id


def test_chaining_returns_memori_and_session_methods_return_the_manager() -> None:
    client = sync_client()
    memori = Memori(DEAD)
    assert memori.attribution("user-1", "agent") is memori
    assert memori.llm.register(client) is memori
    assert memori.reset_session() is memori
    assert memori.new_session() is memori
    sid = str(uuid.uuid4())
    assert memori.set_session(sid) is memori
    assert memori.session.id == sid
    assert isinstance(memori.session.reset(), SessionManager)
    assert memori.session.id != sid
    assert memori.session.set(sid) is memori.session
    assert memori.session.id == sid


def test_every_change_of_session_is_reflected_in_the_id() -> None:
    memori = Memori(DEAD).attribution("user-1")
    seen = {memori.session.id}
    memori.reset_session()
    seen.add(memori.session.id)
    memori.new_session()
    seen.add(memori.session.id)
    memori.session.reset()
    seen.add(memori.session.id)
    assert len(seen) == 4
    assert all(_is_uuid4(item) for item in seen)


def test_set_session_normalises_and_rejects_before_any_call() -> None:
    memori = Memori(DEAD)
    sid = uuid.uuid4()
    assert memori.set_session(str(sid).upper()).session.id == str(sid)
    assert memori.set_session(sid).session.id == str(sid)  # type: ignore[arg-type]
    for bad in ["", "not-a-uuid", str(uuid.uuid1()), "6f1c2d3e-4b5a-4c6d-8e7f", 42, None]:
        with pytest.raises(ValueError, match="UUID"):
            memori.set_session(bad)  # type: ignore[arg-type]
    assert memori.session.id == str(sid)


def test_attribution_types_and_lengths_are_checked() -> None:
    memori = Memori(DEAD)
    with pytest.raises(TypeError, match="entity_id"):
        memori.attribution(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="entity_id"):
        memori.attribution(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="process_id"):
        memori.attribution("user-1", ["agent"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 100"):
        memori.attribution("u" * 101)
    with pytest.raises(ValueError, match="at most 100"):
        memori.attribution("user-1", "p" * 101)
    with pytest.raises(ValueError, match="empty"):
        memori.attribution("")
    memori.attribution(entity_id="u" * 100, process_id="p" * 100)  # the keyword form


def test_switching_attribution_starts_a_new_session() -> None:
    memori = Memori(DEAD)
    first = memori.session.id
    memori.attribution("user-1", "agent")
    assert memori.session.id == first  # the first attribution keeps the fresh session
    memori.attribution("user-1", "agent")
    assert memori.session.id == first
    memori.attribution("user-2", "agent")
    assert memori.session.id != first  # never written into user-1's session


def test_a_call_without_attribution_is_refused_before_any_rpc() -> None:
    client = sync_client()
    Memori(DEAD).llm.register(client)
    with pytest.raises(AttributionRequired, match="attribution"):
        client.chat.completions.create(model="m", messages=[user("hi")])


def test_register_accepts_the_sdk_keyword_and_refuses_non_clients() -> None:
    memori = Memori(DEAD)
    client = sync_client()
    assert memori.llm.register(client, stream=True) is memori
    assert memori.llm.register(client) is memori  # again: harmless
    assert memori.llm.clients == [client]
    with pytest.raises(TypeError, match=r"openai\.OpenAI"):
        memori.llm.register(object())  # type: ignore[arg-type]


def test_one_client_on_two_memori_objects_is_refused_until_released() -> None:
    client = sync_client()
    first = Memori(DEAD).attribution("user-1").llm.register(client)
    second = Memori(DEAD).attribution("user-2")
    with pytest.raises(ClientAlreadyRegistered, match="another Memori"):
        second.llm.register(client)
    first.llm.unregister(client)
    assert second.llm.register(client) is second
    first.close()  # closing the old owner leaves the new registration alone
    assert client.chat.completions.__dict__["create"].__self__.binding is second


def test_raw_responses_are_refused_with_a_clear_error() -> None:
    client = sync_client()
    Memori(DEAD).attribution("user-1").llm.register(client)
    with pytest.raises(UnsupportedCall, match="with_raw_response"):
        client.chat.completions.with_raw_response.create(model="m", messages=[user("hi")])
    with pytest.raises(UnsupportedCall, match="with_streaming_response"):
        client.chat.completions.with_streaming_response.create(model="m", messages=[user("x")])
    with pytest.raises(UnsupportedCall):
        client.with_raw_response.chat.completions.create(model="m", messages=[user("hi")])


def test_closing_unregisters_and_refuses_further_use() -> None:
    client = sync_client()
    with Memori(DEAD).attribution("user-1") as memori:
        memori.llm.register(client)
        assert "create" in client.chat.completions.__dict__
    assert "create" not in client.chat.completions.__dict__  # a plain openai client again
    assert "create" not in client.beta.chat.completions.__dict__
    with pytest.raises(openai.APIConnectionError):  # straight to its own (dead) base URL
        client.chat.completions.create(model="m", messages=[user("hi")])
    with pytest.raises(MemoriClosed):
        memori.llm.register(client)


def test_target_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORI_TARGET", "memori.internal:7000")
    assert Memori().connection.target == "memori.internal:7000"
    assert Memori("other:1").connection.target == "other:1"
    monkeypatch.delenv("MEMORI_TARGET")
    assert Memori().connection.target == "localhost:50051"


def test_api_key_travels_as_bearer_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Memori(DEAD, api_key="k1").connection.metadata == (("authorization", "Bearer k1"),)
    monkeypatch.setenv("MEMORI_API_KEY", "k2")
    assert Memori(DEAD).connection.metadata == (("authorization", "Bearer k2"),)
    assert Memori(DEAD, api_key="").connection.metadata == ()


def test_a_request_id_is_sent_only_when_the_client_retries() -> None:
    from memori_client.call_plan import plan_call
    from memori_proto.v1.common_pb2 import Attribution

    def plan(retries: int) -> str:
        return plan_call(
            {"model": "m", "messages": [user("hi")]},
            session_id=str(uuid.uuid4()),
            attribution=Attribution(entity_id="u"),
            default_timeout=None,
            client=sync_client(max_retries=retries),
        ).request_id

    assert plan(0) == ""  # no retries: no idempotency record to pay for
    assert uuid.UUID(plan(2)).version == 4
    assert plan(2) != plan(2)  # one per create(...), shared by its attempts
