"""ChatService remembers: what the upstream receives, call after call (both databases)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import struct_pb2
from memori_proto.v1 import chat_pb2_grpc, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread, ToolCallSpec
from tests.chat_calls import (
    chat_request,
    complete,
    message,
    sent_messages,
    sent_text,
    stored,
    user,
)
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off


def test_a_fact_told_in_a_session_reaches_the_next_call(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    first = complete(chat, who, user("My birthday is May 15th"))
    assert first.completion.choices[0].message.content == "echo: My birthday is May 15th"
    assert json.loads(first.completion_json)["id"] == first.completion.id
    second = complete(chat, who, user("When is my birthday?"))
    assert second.session.id == first.session.id
    assert sent_messages(upstream) == [
        {"role": "user", "content": "My birthday is May 15th"},
        {"role": "assistant", "content": "echo: My birthday is May 15th"},
        {"role": "user", "content": "When is my birthday?"},
    ]
    assert second.session.message_count == 4
    assert stored(sessions, second.session.id) == [
        (1, "user", "My birthday is May 15th"),
        (2, "assistant", "echo: My birthday is May 15th"),
        (3, "user", "When is my birthday?"),
        (4, "assistant", "echo: When is my birthday?"),
    ]
    current = sessions.Get(session_pb2.GetRequest(attribution=who)).session
    assert current.id == first.session.id


def test_after_reset_nothing_of_the_old_session_is_sent(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    old = complete(chat, who, user("My favorite color is blue"))
    fresh = sessions.Reset(session_pb2.ResetRequest(attribution=who)).session
    answer = complete(chat, who, user("What is my favorite color?"))
    assert answer.session.id == fresh.id != old.session.id
    assert "blue" not in sent_text(upstream)
    assert sent_messages(upstream) == [{"role": "user", "content": "What is my favorite color?"}]


def test_set_resumes_an_earlier_session(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    first = complete(chat, who, user("The code word is pelican"))
    sessions.Reset(session_pb2.ResetRequest(attribution=who))
    complete(chat, who, user("unrelated"))
    sessions.Set(session_pb2.SetRequest(attribution=who, session_id=first.session.id))
    resumed = complete(chat, who, user("What is the code word?"))
    assert resumed.session.id == first.session.id
    assert "pelican" in sent_text(upstream)
    assert "unrelated" not in sent_text(upstream)


def test_an_explicit_session_id_is_created_on_first_use_and_becomes_current(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    chosen = new_id()
    first = complete(chat, who, user("I live in Oslo"), session_id=chosen.upper())
    assert first.session.id == chosen
    assert first.session.attribution == who
    assert sessions.Get(session_pb2.GetRequest(attribution=who)).session.id == chosen
    complete(chat, who, user("Where do I live?"), session_id=chosen)
    assert "Oslo" in sent_text(upstream)


def test_interleaved_attributions_never_see_each_other(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    alice, bob = attribution("agent-a"), attribution("agent-b")
    bob_same_user = type(alice)(entity_id=alice.entity_id, process_id="other-agent")
    complete(chat, alice, user("alice secret: tulip"))
    complete(chat, bob, user("bob secret: walrus"))
    complete(chat, bob_same_user, user("other agent secret: comet"))
    complete(chat, alice, user("alice again"))
    assert "tulip" in sent_text(upstream)
    assert "walrus" not in sent_text(upstream)
    assert "comet" not in sent_text(upstream)
    complete(chat, bob, user("bob again"))
    assert "walrus" in sent_text(upstream)
    assert "tulip" not in sent_text(upstream)
    assert "comet" not in sent_text(upstream)
    complete(chat, bob_same_user, user("other again"))
    assert "comet" in sent_text(upstream)
    assert "tulip" not in sent_text(upstream)
    assert "walrus" not in sent_text(upstream)


def test_another_attributions_session_is_refused_and_nothing_is_sent(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    owner = complete(chat, attribution(), user("mine"))
    before = len(upstream.requests)
    with pytest.raises(grpc.RpcError) as caught:
        complete(chat, attribution(), user("steal"), session_id=owner.session.id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(upstream.requests) == before


def test_system_messages_go_first_and_are_not_stored(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    complete(chat, who, message("system", "You are terse."), user("one"))
    answer = complete(chat, who, user("two"), message("developer", "Answer in French."))
    assert sent_messages(upstream) == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"},
    ]
    roles = [role for _, role, _ in stored(sessions, answer.session.id)]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_an_app_sending_the_whole_conversation_is_not_duplicated(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    conversation = [message("system", "sys"), user("first")]
    reply = complete(chat, who, *conversation)
    conversation += [message("assistant", reply.completion.choices[0].message.content)]
    conversation += [user("second")]
    answer = complete(chat, who, *conversation)
    assert sent_messages(upstream) == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "echo: first"},
        {"role": "user", "content": "second"},
    ]
    assert [content for _, _, content in stored(sessions, answer.session.id)] == [
        "first",
        "echo: first",
        "second",
        "echo: second",
    ]


def test_tool_calls_and_results_are_stored_and_replayed(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    call: ToolCallSpec = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": "{}"},
    }
    upstream.script({"reply": {"content": None, "tool_calls": [call]}})
    tool = struct_pb2.Struct()
    tool.update({"type": "function", "function": {"name": "weather", "parameters": {}}})
    first = complete(chat, who, user("Weather in Oslo?"), tools=[tool])
    choice = first.completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].id == "call_1"
    assert not choice.message.HasField("content")
    upstream.script({"reply": {"content": "It is sunny in Oslo."}})
    complete(chat, who, message("tool", "sunny, 21 C", tool_call_id="call_1"), tools=[tool])
    assert sent_messages(upstream) == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_1"},
    ]
    assert upstream.requests[-1]["body"]["tools"] == [
        {"type": "function", "function": {"name": "weather", "parameters": {}}}
    ]
    complete(chat, who, user("Thanks! And the weather was?"))
    assert sent_messages(upstream)[:4] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is sunny in Oslo."},
    ]
    history = sessions.ListMessages(
        session_pb2.ListMessagesRequest(session_id=first.session.id)
    ).messages
    assert history[1].message.tool_calls[0].function.name == "weather"
    assert history[2].message.tool_call_id == "call_1"


def test_typed_and_extra_parameters_reach_the_upstream_unchanged(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    response_format = struct_pb2.Struct()
    response_format.update({"type": "json_object"})
    extra = {
        "logprobs": True,
        "top_logprobs": 2,
        "logit_bias": {"50256": -100},
        # Numbers JSON keeps apart and Struct would not: a huge int, a float that is whole.
        "metadata": {"k": "v", "big": 12345678901234567890, "ratio": 1.0},
        "prediction": {"type": "content", "content": "x"},
    }
    complete(
        chat,
        attribution(),
        user("params"),
        temperature=0.25,
        top_p=0.5,
        max_completion_tokens=64,
        stop=["END"],
        n=1,
        seed=7,
        user="end-user-1",
        response_format=response_format,
        tool_choice=struct_pb2.Value(string_value="none"),
        extra_json=json.dumps(extra),
    )
    body = upstream.requests[-1]["body"]
    assert body["model"] == "gpt-4o-mini"
    assert "stream" not in body or body["stream"] is False
    for key, value in {
        "temperature": 0.25,
        "top_p": 0.5,
        "max_completion_tokens": 64,
        "stop": ["END"],
        "n": 1,
        "seed": 7,
        "user": "end-user-1",
        "response_format": {"type": "json_object"},
        "tool_choice": "none",
        **extra,
    }.items():
        assert body[key] == value, key
        assert type(body[key]) is type(value), key


def test_multi_part_content_is_sent_and_stored(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    text_part, image_part = struct_pb2.Struct(), struct_pb2.Struct()
    text_part.update({"type": "text", "text": "What is in this image?"})
    image_part.update({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}})
    who = attribution()
    first = complete(chat, who, message("user", content_parts=[text_part, image_part], name="ann"))
    complete(chat, who, user("and again?"))
    assert sent_messages(upstream)[0] == {
        "role": "user",
        "name": "ann",
        "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    }
    first_stored = sessions.ListMessages(
        session_pb2.ListMessagesRequest(session_id=first.session.id)
    ).messages[0]
    assert len(first_stored.message.content_parts) == 2
    assert first_stored.message.name == "ann"


@pytest.fixture
def small_budget_server(
    fresh_database_url: str, upstream: StandinThread
) -> Iterator[InProcessServer]:
    settings = make_settings(
        fresh_database_url, upstream_base_url=upstream.base_url, history_token_budget=60
    )
    running = InProcessServer(settings)
    yield running
    running.close()


def test_history_is_trimmed_to_the_token_budget_oldest_turns_first(
    small_budget_server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    with grpc.insecure_channel(small_budget_server.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        who = attribution()
        for turn in range(1, 9):
            answer = complete(chat, who, user(f"turn {turn} " + "word " * 8))
        sent = sent_messages(upstream)
        assert sent[-1]["content"].startswith("turn 8")
        assert sent[0]["role"] == "user"  # whole turns only
        assert 1 < len(sent) < 15
        assert "turn 1 " not in json.dumps(sent)
        tokens = sessions.ListMessages(
            session_pb2.ListMessagesRequest(session_id=answer.session.id, page_size=100)
        ).messages
        assert len(tokens) == 16  # trimming only limits what is sent; everything is kept
        assert all(item.token_count > 3 for item in tokens)
        history_tokens = sum(item.token_count for item in tokens[-len(sent) : -1])
        assert history_tokens <= 60


def test_the_deadline_becomes_the_upstream_timeout(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    complete(chat, attribution(), user("quick"), timeout=7)
    headers = upstream.requests[-1]["headers"]
    assert 5 < float(headers["x-stainless-read-timeout"]) <= 7.05


def test_a_request_sent_with_chat_request_builder_is_valid() -> None:
    assert chat_request(user("x")).model == "gpt-4o-mini"


def test_calls_by_id_move_the_current_session_back_and_forth(
    chat: chat_pb2_grpc.ChatServiceStub, sessions: session_pb2_grpc.SessionServiceStub
) -> None:
    who, first, second = attribution(), new_id(), new_id()

    def current() -> str:
        return str(sessions.Get(session_pb2.GetRequest(attribution=who)).session.id)

    complete(chat, who, user("one"), session_id=first)
    complete(chat, who, user("two"), session_id=first)
    assert current() == first
    complete(chat, who, user("three"), session_id=second)
    assert current() == second
    complete(chat, who, user("four"), session_id=first)
    assert current() == first
    complete(chat, who, user("five"))  # no id: the current session
    assert len(stored(sessions, first)) == 8
