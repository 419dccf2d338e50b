"""StreamComplete: chunks relayed as they arrive, the turn stored only when the stream ends."""

from __future__ import annotations

import json

import grpc
import pytest
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread, ToolCallSpec
from tests.chat_calls import (
    complete,
    message,
    open_stream,
    sent_messages,
    stored,
    stream,
    streamed_text,
    user,
)
from tests.factories import attribution, new_id
from tests.rpc_errors import CallFailed

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off


def test_a_stream_relays_every_chunk_and_stores_the_turn(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    responses = stream(
        chat,
        who,
        user("My dog is called Rex"),
        extra_json='{"stream_options": {"include_usage": true}}',
    )
    head, chunks = responses[0], responses[1:]
    assert head.session.id
    assert not head.HasField("chunk")
    assert not head.chunk_json
    assert streamed_text(responses) == "echo: My dog is called Rex"
    assert [c.chunk.choices[0].finish_reason for c in chunks if c.chunk.choices][-1] == "stop"
    assert chunks[-1].chunk.usage.total_tokens > 0  # include_usage passed through
    ids = {json.loads(c.chunk_json)["id"] for c in chunks}
    assert len(ids) == 1
    assert upstream.requests[-1]["body"]["stream"] is True
    assert stored(sessions, head.session.id) == [
        (1, "user", "My dog is called Rex"),
        (2, "assistant", "echo: My dog is called Rex"),
    ]
    # The stream's end means the turn is stored: the next call sees it at once.
    complete(chat, who, user("What is my dog called?"))
    assert {"role": "assistant", "content": "echo: My dog is called Rex"} in sent_messages(upstream)


def test_a_streamed_tool_call_is_assembled_and_stored(
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    call: ToolCallSpec = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"city": "Oslo", "days": 3}'},
    }
    upstream.script({"reply": {"content": None, "tool_calls": [call]}})
    who = attribution()
    responses = stream(chat, who, user("forecast?"))
    fragments = [
        tool
        for item in responses
        for choice in item.chunk.choices
        for tool in choice.delta.tool_calls
    ]
    arguments = call["function"]["arguments"]
    assert "".join(f.function.arguments for f in fragments) == arguments
    history = sessions.ListMessages(
        session_pb2.ListMessagesRequest(session_id=responses[0].session.id)
    ).messages
    assert [m.message.role for m in history] == [3, 4]
    assert history[1].message.tool_calls[0].id == "call_9"
    assert history[1].message.tool_calls[0].function.arguments == arguments
    upstream.script({"reply": {"content": "3 days of sun"}})
    stream(chat, who, message("tool", "sun", tool_call_id="call_9"))
    assert sent_messages(upstream)[1:] == [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "content": "sun", "tool_call_id": "call_9"},
    ]


@pytest.mark.parametrize(
    "behaviour", [{"cut_after_chunks": 2}, {"end_without_finish": True}], ids=["cut", "no-finish"]
)
def test_a_broken_stream_ends_in_an_error_and_stores_nothing(
    behaviour: dict[str, object],
    chat: chat_pb2_grpc.ChatServiceStub,
    sessions: session_pb2_grpc.SessionServiceStub,
    upstream: StandinThread,
) -> None:
    who = attribution()
    chosen = new_id()
    upstream.script(behaviour)  # type: ignore[arg-type]
    received: list[chat_pb2.StreamCompleteResponse] = []
    with pytest.raises(grpc.RpcError) as caught:
        received.extend(open_stream(chat, who, user("tell me a story"), session_id=chosen))
    failed = CallFailed(caught.value)
    assert failed.code == grpc.StatusCode.UNAVAILABLE
    assert failed.reason == "UPSTREAM_STREAM_BROKEN"
    assert received
    assert received[0].session.id == chosen
    with pytest.raises(grpc.RpcError) as missing:
        sessions.Get(session_pb2.GetRequest(session_id=chosen))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError):
        sessions.Get(session_pb2.GetRequest(attribution=who))


def test_a_stream_failing_before_its_first_chunk_carries_the_upstream_status(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    upstream.script({"fail": {"status": 404, "message": "The model `nope` does not exist"}})
    with pytest.raises(grpc.RpcError) as caught:
        stream(chat, attribution(), user("hi"), model="nope")
    failed = CallFailed(caught.value)
    assert failed.code == grpc.StatusCode.NOT_FOUND
    assert failed.metadata["upstream_status"] == "404"
    assert "does not exist" in failed.metadata["upstream_message"]
