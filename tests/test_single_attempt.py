"""A completion sent in one attempt (chat/single_attempt.py) is the SDK's request and ends as
the SDK's call would: the same bytes, headers and outcome as `AsyncOpenAI.post`, checked
side by side against the real SDK and the stand-in upstream."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pytest
from memori_server.chat.upstream import Upstream
from memori_server.chat.upstream_errors import UpstreamError

from standin_upstream import Behaviour, StandinThread
from tests.conftest import make_settings

BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "héllo"}]},
    ensure_ascii=False,
).encode()
T = TypeVar("T")
# Set per request by each HTTP library: what it can decompress, and its connection handling.
_TRANSPORT_HEADERS = {"accept-encoding", "connection"}


def _upstream(base_url: str, **overrides: object) -> Upstream:
    settings = make_settings(
        "sqlite://", upstream_base_url=base_url, upstream_api_key="sk-operator", **overrides
    )
    return Upstream(settings)


def _side_by_side(base_url: str, scenario: Callable[[Upstream, Upstream], Awaitable[T]]) -> T:
    """Run `scenario(one attempt, the SDK's post)`, both on `base_url`, in an event loop."""

    async def run() -> T:
        fast = _upstream(base_url)
        sdk = _upstream(base_url)
        sdk.single_attempt = None
        assert fast.single_attempt is not None
        try:
            return await scenario(fast, sdk)
        finally:
            await fast.close()
            await sdk.close()

    return asyncio.run(run())


@pytest.fixture
def stand_in(upstream: StandinThread) -> Iterator[StandinThread]:
    upstream.clear()
    yield upstream
    upstream.script()
    upstream.clear()


def _headers(record: Any) -> dict[str, str]:
    return {k: v for k, v in record["headers"].items() if k not in _TRANSPORT_HEADERS}


def test_the_request_is_the_sdks(stand_in: StandinThread) -> None:
    async def scenario(fast: Upstream, sdk: Upstream) -> list[tuple[str, Any]]:
        return [await each.complete(BODY, 12.5) for each in (fast, sdk)]

    sent = _side_by_side(stand_in.base_url, scenario)
    first, second = stand_in.wait_for_requests(2)
    assert (first["method"], first["path"]) == (second["method"], second["path"])
    assert first["path"] == "/v1/chat/completions"
    assert first["body"] == second["body"] == json.loads(BODY)
    assert _headers(first) == _headers(second)
    assert first["headers"]["authorization"] == "Bearer sk-operator"
    assert first["headers"]["x-stainless-read-timeout"] == "12.5"
    assert first["headers"]["x-stainless-retry-count"] == "0"
    assert sent[0][1]["choices"] == sent[1][1]["choices"]  # echoes of the same request


@pytest.mark.parametrize(
    "behaviour",
    [
        {"fail": {"status": 400, "message": "bad 'tools'", "param": "tools", "code": "x"}},
        {"fail": {"status": 401, "message": "Incorrect API key"}},
        {"fail": {"status": 404, "message": "no such model", "type": "invalid_request_error"}},
        {"fail": {"status": 429, "message": "slow down", "retry_after": 7}},
        {"fail": {"status": 429, "message": "slow down", "retry_after_ms": 1500}},
        {"fail": {"status": 500, "message": "boom"}},
        {"fail": {"status": 503}},
        {"raw": {"status": 502, "body": "<html>bad gateway</html>", "content_type": "text/html"}},
        {"raw": {"status": 200, "body": "not json"}},
        {"raw": {"status": 200, "body": '{"no": "choices"}'}},
        {"raw": {"status": 200, "body_base64": "/w=="}},  # not UTF-8
        {"raw": {"status": 307, "body": "{}"}},  # a redirect nowhere: the SDK's own answer
    ],
)
def test_every_failure_is_the_sdks(stand_in: StandinThread, behaviour: Behaviour) -> None:
    async def scenario(fast: Upstream, sdk: Upstream) -> list[tuple[str, ...]]:
        outcomes = []
        for each in (fast, sdk):
            stand_in.script(behaviour, behaviour)  # a redirect goes to the SDK: twice
            outcomes.append(await _outcome(each.complete(BODY, 10.0)))
            stand_in.script()
        return outcomes

    outcomes = _side_by_side(stand_in.base_url, scenario)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "UpstreamError"


async def _outcome(call: Awaitable[object]) -> tuple[str, ...]:
    try:
        await call
    except UpstreamError as error:
        details = [str(detail) for detail in error.details()]
        return ("UpstreamError", str(error.code), error.reason, str(error), *details)
    return ("ok",)


def test_an_unreachable_upstream_fails_as_through_the_sdk() -> None:
    async def scenario(fast: Upstream, sdk: Upstream) -> list[tuple[str, ...]]:
        return [await _outcome(each.complete(BODY, 5.0)) for each in (fast, sdk)]

    outcomes = _side_by_side("http://127.0.0.1:9/v1", scenario)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2] == "UPSTREAM_UNREACHABLE"


def test_a_silent_upstream_times_out_as_through_the_sdk(stand_in: StandinThread) -> None:
    async def scenario(fast: Upstream, sdk: Upstream) -> list[tuple[str, ...]]:
        outcomes = []
        for each in (fast, sdk):
            stand_in.script({"stall": True})
            started = time.monotonic()
            outcomes.append(await _outcome(each.complete(BODY, 0.3)))
            assert time.monotonic() - started < 5
        return outcomes

    outcomes = _side_by_side(stand_in.base_url, scenario)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2] == "UPSTREAM_TIMEOUT"


def test_a_cancelled_attempt_leaves_the_pool_usable(stand_in: StandinThread) -> None:
    async def scenario(fast: Upstream, _sdk: Upstream) -> dict[str, Any]:
        stand_in.script({"stall": True})
        call = asyncio.ensure_future(fast.complete(BODY, 30.0))
        await asyncio.to_thread(stand_in.wait_for_requests, 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        _, parsed = await fast.complete(BODY, 5.0)
        return parsed

    parsed = _side_by_side(stand_in.base_url, scenario)
    assert parsed["choices"][0]["message"]["content"] == "echo: héllo"


@pytest.mark.parametrize(
    ("overrides", "environment"),
    [
        ({"upstream_max_retries": 2}, {}),  # the SDK's retry loop runs the call
        ({}, {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}),  # a proxy's transport
    ],
)
def test_the_sdk_sends_what_one_attempt_would_not_be(
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, object],
    environment: dict[str, str],
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    each = _upstream("http://upstream.example/v1", **overrides)
    assert each.single_attempt is None
    asyncio.run(each.close())


class _Compressing(http.server.BaseHTTPRequestHandler):
    """An upstream that gzips its answers, as OpenAI's does for clients that accept it."""

    gzipped: ClassVar[list[bool]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        answer = _COMPLETION if self.status == 200 else {"error": {"message": "slow down"}}
        body = json.dumps(answer).encode()
        gzipped = "gzip" in (self.headers.get("accept-encoding") or "")
        self.gzipped.append(gzipped)
        if gzipped:
            body = gzip.compress(body)
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        if gzipped:
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


_COMPLETION = {
    "id": "chatcmpl-gz",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "compressed"},
            "finish_reason": "stop",
        }
    ],
}


@pytest.mark.parametrize("status", [200, 429])
def test_a_compressed_answer_is_read_as_through_the_sdk(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setattr(_Compressing, "status", status)
    monkeypatch.setattr(_Compressing, "gzipped", [])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Compressing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:

        async def scenario(fast: Upstream, sdk: Upstream) -> list[object]:
            answers: list[object] = []
            for each in (fast, sdk):
                try:
                    answers.append((await each.complete(BODY, 5.0))[1])
                except UpstreamError as error:
                    answers.append((str(error.code), str(error), error.upstream_message))
            return answers

        answers = _side_by_side(f"http://127.0.0.1:{server.server_port}/v1", scenario)
    finally:
        server.shutdown()
        server.server_close()
    assert answers[0] == answers[1]
    if status == 200:
        assert answers[0] == _COMPLETION
    else:
        assert answers[0][2] == "slow down"  # type: ignore[index]
    assert _Compressing.gzipped == [True, True]  # both asked for it: both decompressed it
