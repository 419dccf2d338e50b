"""The stand-in upstream (a test double for the LLM) speaks well enough for the real OpenAI SDK."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from standin_upstream import StandinThread, StandinUpstream, ToolCallSpec
from tests.repo_paths import ROOT

HELLO: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there, upstream"},
]
ECHO = "echo: hello there, upstream"
WEATHER_CALL: ToolCallSpec = {
    "id": "call_weather",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
}


@pytest.fixture
def upstream() -> Iterator[StandinThread]:
    with StandinThread() as running:
        yield running


@pytest.fixture
def client(upstream: StandinThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream.base_url, api_key="test", max_retries=0) as opened:
        yield opened


def _stream(client: openai.OpenAI, **options: Any) -> list[ChatCompletionChunk]:
    return list(
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True, **options)
    )


def _content(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_unary_reply_is_a_chat_completion_echoing_the_last_user_message(
    client: openai.OpenAI,
) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    assert isinstance(reply, ChatCompletion)
    assert reply.id.startswith("chatcmpl-standin-")
    assert reply.model == "gpt-4o-mini"
    assert reply.system_fingerprint == "fp_standin"
    [choice] = reply.choices
    assert (choice.message.role, choice.message.content) == ("assistant", ECHO)
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_multi_part_content_and_n_choices(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        n=2,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
            }
        ],
    )

    assert [c.index for c in reply.choices] == [0, 1]
    assert {c.message.content for c in reply.choices} == {"echo: first\nsecond"}


def test_stream_with_usage_joins_back_to_the_echo(client: openai.OpenAI) -> None:
    chunks = _stream(client, stream_options={"include_usage": True})

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert _content(chunks) == ECHO
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


def test_tool_calls_in_a_unary_reply(upstream: StandinThread, client: openai.OpenAI) -> None:
    second_call: ToolCallSpec = {
        "type": "function",
        "function": {"name": "get_time", "arguments": {"tz": "CET"}},
    }
    upstream.script({"reply": {"tool_calls": [WEATHER_CALL, second_call]}})

    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    [choice] = reply.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.type, c.id) for c in calls] == [
        ("function", "call_weather"),
        ("function", calls[1].id),
    ]
    functions = [c.function for c in calls if c.type == "function"]
    assert [(f.name, json.loads(f.arguments)) for f in functions] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_time", {"tz": "CET"}),
    ]


def test_tool_calls_stream_as_deltas(upstream: StandinThread, client: openai.OpenAI) -> None:
    upstream.script({"reply": {"tool_calls": [WEATHER_CALL]}})

    chunks = _stream(client)

    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert calls == {
        0: {
            "id": "call_weather",
            "name": "get_weather",
            "arguments": '{"city": "Paris", "unit": "celsius"}',
        }
    }
    argument_chunks = [c for c in chunks if c.choices[0].delta.tool_calls]
    assert len(argument_chunks) > 2  # the name first, then the arguments in pieces
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_scripted_failures_raise_the_sdk_errors(
    upstream: StandinThread, client: openai.OpenAI
) -> None:
    upstream.script(
        {
            "fail": {
                "status": 429,
                "message": "slow down",
                "code": "rate_limit_exceeded",
                "retry_after": 2,
            }
        },
        {"fail": {"status": 500, "retry_after_ms": 250}},
    )

    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    with pytest.raises(openai.InternalServerError) as broken:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    assert limited.value.message.endswith("slow down")
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "2"
    assert broken.value.status_code == 500
    assert broken.value.type == "server_error"
    assert broken.value.response.headers["retry-after-ms"] == "250"
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices


def test_stall_runs_into_the_client_timeout(upstream: StandinThread, client: openai.OpenAI) -> None:
    upstream.script({"stall": True})

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(
            model="gpt-4o-mini", messages=HELLO
        )
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == ECHO


def test_a_stalled_request_blocks_no_other_and_stop_releases_it() -> None:
    upstream = StandinThread().start()
    upstream.script({"stall": True}, {"delay": 0.05})
    upstream.set_delay(0.01)
    outcome: list[BaseException] = []

    def stalled() -> None:
        with openai.OpenAI(base_url=upstream.base_url, api_key="test", max_retries=0) as client:
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, timeout=60)
            except openai.APIError as exc:
                outcome.append(exc)

    waiting = threading.Thread(target=stalled)
    waiting.start()
    try:
        upstream.wait_for_requests(1, timeout=10)
        with openai.OpenAI(base_url=upstream.base_url, api_key="test", max_retries=0) as other:
            reply = other.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert reply.choices[0].message.content == ECHO
    finally:
        upstream.stop()
        waiting.join(timeout=10)

    assert not waiting.is_alive()
    assert [type(e) for e in outcome] == [openai.APIConnectionError]


def test_cut_stream_raises_a_connection_error(
    upstream: StandinThread, client: openai.OpenAI
) -> None:
    upstream.script({"cut_after_chunks": 2})
    received: list[ChatCompletionChunk] = []

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
    with pytest.raises(openai.APIConnectionError) as cut:
        received.extend(stream)

    # The SDK wraps httpx2's complaint about the unfinished chunked body.
    assert type(cut.value) is openai.APIConnectionError
    assert isinstance(cut.value.__cause__, httpx2.RemoteProtocolError)
    assert "incomplete chunked read" in str(cut.value.__cause__)
    assert len(received) == 2


def test_stream_that_ends_without_a_finish_reason(
    upstream: StandinThread, client: openai.OpenAI
) -> None:
    upstream.script({"end_without_finish": True})

    chunks = _stream(client)

    assert _content(chunks) == ECHO
    assert [c.choices[0].finish_reason for c in chunks] == [None] * len(chunks)


def test_paced_stream_still_joins_back_to_the_echo(
    upstream: StandinThread, client: openai.OpenAI
) -> None:
    upstream.script({"chunk_delay": 0.001})

    assert _content(_stream(client)) == ECHO


def test_chat_requests_are_recorded_in_order(
    upstream: StandinThread, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    _stream(client, stream_options={"include_usage": True})
    client.models.list()

    records = upstream.wait_for_requests(2)
    assert [(r["method"], r["path"]) for r in records] == [("POST", "/v1/chat/completions")] * 2
    assert records[0]["headers"]["authorization"] == "Bearer test"
    assert records[0]["body"]["messages"] == HELLO
    assert records[1]["body"]["stream"] is True
    upstream.clear()
    assert upstream.requests == []


def test_script_rejects_what_it_does_not_know(upstream: StandinThread) -> None:
    with pytest.raises(ValueError, match="unknown key 'stal'"):
        upstream.script({"stal": True})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match=r"fail\.status"):
        upstream.script({"fail": {"status": 200}})


def test_models_are_listed(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "standin-echo"]


def test_200_sequential_requests_share_one_keep_alive_connection(
    upstream: StandinThread, client: openai.OpenAI
) -> None:
    for i in range(200):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"n{i}"}]
        )
        assert reply.choices[0].message.content == f"echo: n{i}"

    assert upstream.upstream.connections_accepted == 1


def test_async_api_in_process() -> None:
    async def scenario() -> tuple[str | None, str]:
        async with StandinUpstream() as upstream:
            upstream.script({"reply": {"content": "scripted"}})
            client = openai.AsyncOpenAI(base_url=upstream.base_url, api_key="t", max_retries=0)
            async with client:
                reply = await client.chat.completions.create(model="m", messages=HELLO)
                stream = await client.chat.completions.create(
                    model="m", messages=HELLO, stream=True
                )
                pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return reply.choices[0].message.content, "".join(pieces)

    assert asyncio.run(scenario()) == ("scripted", ECHO)


def _raw(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_http_errors_use_the_openai_error_shape(upstream: StandinThread) -> None:
    status, body = _raw(upstream.port, "GET", "/v1/nowhere")
    assert status == 404
    assert set(body["error"]) == {"message", "type", "param", "code"}

    status, body = _raw(upstream.port, "POST", "/v1/chat/completions", b"{not json")
    assert (status, body["error"]["type"]) == (400, "invalid_request_error")

    status, body = _raw(upstream.port, "POST", "/chat/completions", b'{"model": "m"}')
    assert (status, body["error"]["param"]) == (400, "messages")

    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
    connection.request(
        "POST", "/v1/chat/completions", iter([b"{}"]), {"Transfer-Encoding": "chunked"}
    )
    assert connection.getresponse().status == 411
    connection.close()


def test_streams_are_framed_for_keep_alive_and_connection_close_is_honoured(
    upstream: StandinThread,
) -> None:
    request = json.dumps({"model": "m", "messages": HELLO, "stream": True}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
    for _ in range(2):
        connection.request("POST", "/v1/chat/completions", request)
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read().endswith(b"data: [DONE]\n\n")
    connection.close()
    assert upstream.upstream.connections_accepted == 1

    with socket.create_connection(("127.0.0.1", upstream.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while data := sock.recv(65536):  # ends only when the server closes the connection
            received += data
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in received


def _control(base: str, method: str, path: str, payload: object = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{base}/_standin/{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_separate_process_is_controlled_over_http() -> None:
    command = [sys.executable, "-m", "standin_upstream", "--port", "0", "--delay-ms", "0"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(
                r"standin-upstream listening base_url=(http://127.0.0.1:\d+)/v1\n", line
            )
            assert match, line
            _drive_over_http(match[1])
        finally:
            process.terminate()
            returncode = process.wait(timeout=10)
    assert returncode == 0


def _drive_over_http(base: str) -> None:
    assert _control(base, "POST", "script", [{"fail": {"status": 429}}, {}]) == {"queued": 2}
    assert _control(base, "POST", "delay", {"seconds": 0.01}) == {"seconds": 0.01}
    with openai.OpenAI(base_url=f"{base}/v1", api_key="test", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    recorded = _control(base, "GET", "requests")
    assert [r["body"]["messages"] for r in recorded] == [HELLO, HELLO]
    with pytest.raises(urllib.error.HTTPError) as refused:
        _control(base, "POST", "script", [{"nonsense": 1}])
    with refused.value:
        assert refused.value.code == 400
        assert "unknown key 'nonsense'" in json.loads(refused.value.read())["error"]["message"]
    assert _control(base, "POST", "reset", {}) == {"ok": True}
    assert _control(base, "GET", "requests") == []


def test_help_says_it_is_a_test_double() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "standin_upstream", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "TEST DOUBLE" in result.stdout
    assert "not a model" in result.stdout
