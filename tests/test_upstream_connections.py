"""The one-attempt POST's own connections (chat/upstream_connections.py): kept alive and
reused only while sound, every framing and encoding of an answer read as the SDK reads it,
every broken answer failing as through the SDK, bounded in size, and TLS as the SDK's.

The upstream here is a raw TCP server whose answers are scripted byte for byte."""

from __future__ import annotations

import asyncio
import gzip
import json
import socketserver
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from memori_server.chat.upstream import Upstream
from memori_server.chat.upstream_connections import Origin, UpstreamConnections
from memori_server.chat.upstream_errors import UpstreamError
from memori_server.errors import ReplyTooLarge
from yarl import URL

from tests.conftest import make_settings
from tests.test_tls_and_metrics import self_signed

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
    }
).encode()
# What a script returns for one request: the bytes to send, and whether to close after them.
Script = Callable[[int], tuple[bytes, bool]]


def answer(
    body: bytes = COMPLETION, *, status: str = "200 OK", headers: tuple[str, ...] = ()
) -> bytes:
    lines = [f"HTTP/1.1 {status}", "content-type: application/json", *headers]
    if not any(
        line.lower().startswith(("content-length", "transfer-encoding")) for line in headers
    ):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ok(_: int) -> tuple[bytes, bool]:
    return answer(), False


class RawUpstream:
    """A threaded TCP server: reads each request whole, answers what `script` says for the
    request's number (0, 1, ...), and counts connections and requests."""

    def __init__(self, script: Script = ok, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.connections = 0
        self.ended = 0  # connections the client closed or the script did
        self.requests: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                try:
                    self._serve()
                except OSError:  # a client that refused our certificate, or hung up
                    pass
                finally:
                    outer.ended += 1

            def _serve(self) -> None:
                stream = self.request
                if tls is not None:
                    stream = tls.wrap_socket(stream, server_side=True)
                reader = stream.makefile("rb")
                while True:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            return
                        head += line
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    outer.requests.append(head + reader.read(length))
                    data, close = outer.script(len(outer.requests) - 1)
                    stream.sendall(data)
                    if close:
                        stream.close()
                        return

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def raw() -> Iterator[RawUpstream]:
    server = RawUpstream()
    yield server
    server.close()


def _upstream(base_url: str, **overrides: object) -> Upstream:
    settings = make_settings(
        "sqlite://", upstream_base_url=base_url, upstream_api_key="sk-operator", **overrides
    )
    return Upstream(settings)


async def _outcome(upstream: Upstream) -> tuple[str, ...]:
    try:
        text, _ = await upstream.complete(BODY, 5.0)
    except UpstreamError as error:
        return ("UpstreamError", error.code.name, error.reason, str(error))
    except ReplyTooLarge as error:
        return ("ReplyTooLarge", error.code.name, str(error))
    return ("ok", text)


def _both(base_url: str, calls: int = 1, **overrides: object) -> list[list[tuple[str, ...]]]:
    """The outcomes of `calls` calls in one attempt, then as many through the SDK."""

    async def run() -> list[list[tuple[str, ...]]]:
        fast, sdk = _upstream(base_url, **overrides), _upstream(base_url, **overrides)
        sdk.single_attempt = None
        assert fast.single_attempt is not None
        try:
            return [[await _outcome(each) for _ in range(calls)] for each in (fast, sdk)]
        finally:
            await fast.close()
            await sdk.close()

    return asyncio.run(run())


def _url(server: RawUpstream) -> str:
    return f"http://127.0.0.1:{server.port}/v1"


def test_one_connection_serves_call_after_call(raw: RawUpstream) -> None:
    fast, sdk = _both(_url(raw), calls=3)
    assert fast == sdk == [("ok", COMPLETION.decode())] * 3
    assert raw.connections == 2  # one for the three calls in one attempt, one for the SDK's
    first = raw.requests[0].decode()
    assert first.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{raw.port}\r\n" in first.lower()
    assert first.endswith("\r\n\r\n" + BODY.decode())


def test_an_answer_that_closes_its_connection_is_the_last_on_it(raw: RawUpstream) -> None:
    raw.script = lambda _: (answer(headers=("connection: close",)), True)
    fast, sdk = _both(_url(raw), calls=3)
    assert fast == sdk == [("ok", COMPLETION.decode())] * 3
    assert raw.connections == 6


def test_a_connection_the_upstream_closed_while_idle_is_not_used(raw: RawUpstream) -> None:
    raw.script = lambda _: (answer(), True)  # keep-alive announced, then closed anyway

    async def run() -> list[tuple[str, ...]]:
        upstream = _upstream(_url(raw))
        outcomes = []
        for _ in range(3):
            outcomes.append(await _outcome(upstream))
            await asyncio.sleep(0.1)  # the close reaches the idle connection
        await upstream.close()
        return outcomes

    assert asyncio.run(run()) == [("ok", COMPLETION.decode())] * 3
    assert raw.connections == 3


def test_a_connection_that_sends_more_than_the_answer_is_not_reused(raw: RawUpstream) -> None:
    raw.script = lambda _: (answer() + b"HTTP/1.1 200 OK\r\ncontent-le", False)

    async def run() -> list[tuple[str, ...]]:
        upstream = _upstream(_url(raw))
        try:
            return [await _outcome(upstream) for _ in range(2)]
        finally:
            await upstream.close()

    assert asyncio.run(run()) == [("ok", COMPLETION.decode())] * 2
    assert raw.connections == 2  # out of step after the first answer: closed, not reused


def _chunked(body: bytes) -> bytes:
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    return (
        head.encode()
        + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7])
            for i in range(0, len(body), 7)
        )
        + b"0\r\n\r\n"
    )


def _raw_deflate(body: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


@pytest.mark.parametrize(
    ("data", "close"),
    [
        (_chunked(COMPLETION), False),
        # Neither a length nor chunks: the body ends with the connection.
        (b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n" + COMPLETION, True),
        (answer(gzip.compress(COMPLETION), headers=("content-encoding: gzip",)), False),
        (answer(zlib.compress(COMPLETION), headers=("content-encoding: deflate",)), False),
        (answer(_raw_deflate(COMPLETION), headers=("content-encoding: deflate",)), False),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + answer(), False),
    ],
    ids=["chunked", "until-close", "gzip", "deflate", "raw-deflate", "interim-100"],
)
def test_every_framing_and_encoding_reads_as_through_the_sdk(
    raw: RawUpstream, data: bytes, close: bool
) -> None:
    raw.script = lambda _: (data, close)
    fast, sdk = _both(_url(raw), calls=2)
    assert fast == sdk == [("ok", COMPLETION.decode())] * 2


UNREACHABLE = ("UpstreamError", "UNAVAILABLE", "UPSTREAM_UNREACHABLE")
INVALID = ("UpstreamError", "UNAVAILABLE", "UPSTREAM_INVALID_RESPONSE")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"SPDY/9 200 OK\r\n\r\n", UNREACHABLE),  # not HTTP/1.1
        (answer()[:-10], UNREACHABLE),  # cut off in the body
        (_chunked(COMPLETION)[:-12], UNREACHABLE),  # cut off between chunks
        (answer(b"\x1f\x8b\x08\x00broken", headers=("content-encoding: gzip",)), INVALID),
    ],
    ids=["not-http", "cut-body", "cut-chunks", "broken-gzip"],
)
def test_a_broken_answer_fails_as_through_the_sdk(
    raw: RawUpstream, data: bytes, expected: tuple[str, ...]
) -> None:
    raw.script = lambda _: (data, True)
    fast, sdk = _both(_url(raw))
    assert fast[0][:3] == sdk[0][:3] == expected


def test_a_connection_closed_without_an_answer_is_unreachable_not_a_timeout(
    raw: RawUpstream,
) -> None:
    raw.script = lambda _: (b"", True)
    fast, sdk = _both(_url(raw))
    assert fast[0][:3] == UNREACHABLE
    # The SDK's vendored aiohttp transport calls every aiohttp connection error a connect
    # timeout: nothing timed out here, the upstream hung up.
    assert sdk[0][:3] == ("UpstreamError", "DEADLINE_EXCEEDED", "UPSTREAM_TIMEOUT")


def test_an_encoding_not_asked_for_is_an_invalid_response(raw: RawUpstream) -> None:
    raw.script = lambda _: (answer(b"??", headers=("content-encoding: zstd",)), False)
    fast, _ = _both(_url(raw))
    assert fast[0][:3] == INVALID
    assert "an encoding this server did not ask for (zstd)" in fast[0][3]
    assert b"accept-encoding: gzip, deflate\r\n" in raw.requests[0].lower()


@pytest.mark.parametrize("compressed", [False, True])
def test_an_answer_larger_than_a_message_is_refused_while_it_arrives(
    raw: RawUpstream, compressed: bool
) -> None:
    huge = b'{"choices":[],"pad":"' + b"x" * 2_000_000 + b'"}'
    data = (
        answer(gzip.compress(huge), headers=("content-encoding: gzip",))
        if compressed
        else answer(huge)
    )
    raw.script = lambda _: (data, False)

    async def run() -> tuple[str, ...]:
        upstream = _upstream(_url(raw), max_message_bytes=100_000)
        try:
            return await _outcome(upstream)
        finally:
            await upstream.close()

    outcome = asyncio.run(run())
    assert outcome[:2] == ("ReplyTooLarge", "RESOURCE_EXHAUSTED")
    assert "is larger than this server sends in one message (100000" in outcome[2]


def test_calls_beyond_the_connection_limit_wait_for_a_connection(raw: RawUpstream) -> None:
    def slow(_: int) -> tuple[bytes, bool]:
        time.sleep(0.1)
        return answer(), False

    raw.script = slow

    async def run() -> list[tuple[str, ...]]:
        upstream = _upstream(_url(raw), upstream_max_connections=1)
        try:
            return list(await asyncio.gather(*(_outcome(upstream) for _ in range(3))))
        finally:
            await upstream.close()

    assert asyncio.run(run()) == [("ok", COMPLETION.decode())] * 3
    assert raw.connections == 1


def _connections(port: int, keepalive_expiry: float | None) -> UpstreamConnections:
    origin = Origin(URL(f"http://127.0.0.1:{port}/v1/chat/completions"), None)
    return UpstreamConnections(
        origin, [], limit=None, keepalive_expiry=keepalive_expiry, max_answer_bytes=1 << 20
    )


def test_a_connection_idle_past_the_keepalive_expiry_is_closed_not_reused(
    raw: RawUpstream,
) -> None:
    async def run() -> list[int]:
        statuses = []
        for expiry in (0.05, 60.0):
            connections = _connections(raw.port, expiry)
            for _ in range(2):
                statuses.append((await connections.post(BODY, b"", 5.0)).status)
                await asyncio.sleep(0.15)
            connections.close()
        return statuses

    assert asyncio.run(run()) == [200] * 4
    assert raw.connections == 3  # two past the expiry, then one kept


def test_a_timed_out_connection_is_never_reused(raw: RawUpstream) -> None:
    def first_late(number: int) -> tuple[bytes, bool]:
        if number == 0:
            time.sleep(0.5)
        return answer(), False

    raw.script = first_late

    async def run() -> int:
        connections = _connections(raw.port, None)
        with pytest.raises(TimeoutError):
            await connections.post(BODY, b"", 0.2)
        status = (await connections.post(BODY, b"", 5.0)).status
        connections.close()
        return status

    assert asyncio.run(run()) == 200
    assert raw.connections == 2  # the late answer to the first call is never read as the second's


def test_a_connection_left_by_an_ended_event_loop_is_not_reused(raw: RawUpstream) -> None:
    connections = _connections(raw.port, None)
    statuses = [asyncio.run(connections.post(BODY, b"", 5.0)).status for _ in range(2)]
    connections.close()
    assert statuses == [200, 200]
    assert raw.connections == 2


def test_tls_is_verified_as_the_sdk_verifies_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = RawUpstream(tls=context)
    url = f"https://localhost:{server.port}/v1"
    try:
        untrusted_fast, untrusted_sdk = _both(url)  # the system's roots do not know it
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # read as the SDK's client starts
        trusted_fast, trusted_sdk = _both(url, calls=2)
    finally:
        server.close()
    assert untrusted_fast[0][:3] == untrusted_sdk[0][:3]
    assert untrusted_fast[0][2] == "UPSTREAM_UNREACHABLE"
    assert trusted_fast == trusted_sdk == [("ok", COMPLETION.decode())] * 2


def test_closing_the_upstream_closes_its_idle_connections(raw: RawUpstream) -> None:
    async def run() -> None:
        upstream = _upstream(_url(raw))
        await _outcome(upstream)
        assert raw.ended == 0  # kept alive
        await upstream.close()

    asyncio.run(run())
    deadline = time.monotonic() + 5
    while raw.ended < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert raw.ended == 1


def test_a_stream_answered_with_something_not_http_is_unreachable(raw: RawUpstream) -> None:
    """Streams go through the SDK, whose transport lets this aiohttp error through unmapped:
    it must not reach the caller as INTERNAL."""
    raw.script = lambda _: (b"SPDY/9 200 OK\r\n\r\n", True)

    async def run() -> tuple[str, ...]:
        upstream = _upstream(_url(raw))
        try:
            async for _ in upstream.stream(BODY, 5.0):
                pass
        except UpstreamError as error:
            return ("UpstreamError", error.code.name, error.reason)
        finally:
            await upstream.close()
        return ("ok",)

    assert asyncio.run(run()) == UNREACHABLE
