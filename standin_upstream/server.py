"""StandinUpstream: the asyncio server, its routes and the in-process control API."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import time
from types import TracebackType
from typing import Any, Self

from standin_upstream import completions
from standin_upstream.behaviours import Behaviour, FailSpec
from standin_upstream.state import RecordedRequest, State
from standin_upstream.wire import (
    LAST_CHUNK,
    HttpError,
    Request,
    chunk,
    json_response,
    read_request,
    response_head,
)

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
MODEL_IDS = ("gpt-4o-mini", "standin-echo")
CONTROL_PREFIX = "/_standin/"
MAX_CHOICES = 128
_DONE = b"data: [DONE]\n\n"


class StandinUpstream:
    """A local OpenAI-compatible upstream that echoes, records and misbehaves on request.

    `requests`, `script`, `clear` and `set_delay` are safe to call from any thread.
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self._state = State(delay)
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._connections: set[asyncio.Task[Any]] = set()
        self._accepted = 0
        self._abandoned = 0
        self._numbers = itertools.count(1)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._server is not None:
            raise RuntimeError("StandinUpstream is already started")
        self._server = await asyncio.start_server(self._serve_connection, host, port)
        self._host = host

    async def stop(self) -> None:
        """Stop listening and drop every open connection, stalled ones included."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("StandinUpstream is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """What to give the OpenAI SDK as `base_url`."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the chat requests received so far, oldest first."""
        return self._state.records()

    @property
    def delay(self) -> float:
        return self._state.delay

    @property
    def abandoned_requests(self) -> int:
        """Stalled requests whose client closed the connection (a cancelled call)."""
        return self._abandoned

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far; lets tests see that keep-alive is used."""
        return self._accepted

    def script(self, *behaviours: Behaviour) -> None:
        """Queue one-shot behaviours, each used by the next chat request (FIFO)."""
        self._state.script(behaviours)

    def clear(self) -> None:
        """Forget the recorded requests and any behaviours not used yet."""
        self._state.clear()

    def set_delay(self, seconds: float) -> None:
        """Delay every chat reply by this much from now on (scripted delays add to it)."""
        self._state.set_delay(seconds)

    def wait_for_records(self, count: int, timeout: float) -> list[RecordedRequest]:
        """Block the calling thread (never the server's loop) until `count` requests arrived."""
        return self._state.wait_for_records(count, timeout)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:  # no Nagle: small replies must not wait for the client's delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    request = await read_request(reader, writer)
                except HttpError as exc:
                    body = completions.error(exc.message, "invalid_request_error")
                    writer.write(json_response(exc.status, body, close=True))
                    await writer.drain()
                    break
                if request is None or not await self._respond(request, reader, writer):
                    break
                await writer.drain()
                if not request.keep_alive:
                    break
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # Only stop() cancels us. Ending normally keeps Python 3.11's start_server from
            # logging "Exception in callback" for every connection it drops.
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _respond(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must not carry another."""
        try:
            if request.path in CHAT_PATHS:
                if request.method != "POST":
                    return self._send_error(
                        writer, request, 405, "use POST", "invalid_request_error"
                    )
                return await self._chat(request, reader, writer)
            if request.path in MODELS_PATHS and request.method == "GET":
                return self._send(writer, request, 200, _models())
            if request.path.startswith(CONTROL_PREFIX):
                return self._control(request, writer)
            message = f"Unknown request URL: {request.method} {request.path}."
            return self._send_error(writer, request, 404, message, "invalid_request_error")
        except ConnectionError:
            raise
        except Exception as exc:  # a bug here should reach the test as a 500, not a hang
            body = completions.error(f"standin internal error: {exc!r}", "server_error")
            writer.write(json_response(500, body, close=True))
            return False

    async def _chat(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            body = json.loads(request.body)
        except ValueError:
            self._record(request, None)
            message = "We could not parse the JSON body of your request."
            return self._send_error(writer, request, 400, message, "invalid_request_error")
        self._record(request, body)
        problem = _invalid_chat(body)
        if problem is not None:
            message, param = problem
            return self._send_error(writer, request, 400, message, "invalid_request_error", param)
        behaviour = self._state.next_behaviour()
        delay = self._state.delay + behaviour.get("delay", 0)
        if delay > 0:
            await asyncio.sleep(delay)
        if behaviour.get("stall"):
            while await reader.read(65536):  # hold on until the client gives up
                pass
            self._abandoned += 1
            return False
        number = next(self._numbers)
        if "raw" in behaviour:
            raw = behaviour["raw"]
            if "body_base64" in raw:
                body_bytes = base64.b64decode(raw["body_base64"])
            else:
                body_bytes = raw.get("body", "").encode()
            head = response_head(
                raw.get("status", 200),
                raw.get("content_type", "application/json"),
                length=len(body_bytes),
                close=not request.keep_alive,
            )
            writer.write(head + body_bytes)
            return True
        if "fail" in behaviour:
            return self._fail(writer, request, behaviour["fail"])
        messages: list[Any] = body["messages"]
        reply = completions.make_reply(behaviour.get("reply"), messages, f"standin_{number}")
        fields: dict[str, Any] = {
            "completion_id": f"chatcmpl-standin-{number}",
            "created": int(time.time()),
            "model": body["model"],
            "n": body.get("n") or 1,
            "prompt": completions.prompt_tokens(messages),
        }
        extra = {"x-request-id": f"req_standin_{number}"}
        if body.get("stream") is True:
            return await self._stream(writer, request, reply, behaviour, body, fields, extra)
        return self._send(writer, request, 200, completions.completion(reply, **fields), extra)

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        request: Request,
        reply: completions.Reply,
        behaviour: Behaviour,
        body: dict[str, Any],
        fields: dict[str, Any],
        extra: dict[str, str],
    ) -> bool:
        options = body.get("stream_options")
        events = completions.stream_events(
            reply,
            **fields,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            with_finish=not behaviour.get("end_without_finish", False),
        )
        cut = behaviour.get("cut_after_chunks")
        if cut is None:
            events.append(_DONE)
        else:
            events = events[:cut]
        extra["Cache-Control"] = "no-cache"
        close = not request.keep_alive
        head = response_head(200, "text/event-stream", length=None, close=close, extra=extra)
        tail = LAST_CHUNK if cut is None else b""
        pause = behaviour.get("chunk_delay", 0)
        if pause:
            writer.write(head)
            for event in events:
                await asyncio.sleep(pause)
                writer.write(chunk(event))
                await writer.drain()
            writer.write(tail)
        else:
            writer.write(head + b"".join(map(chunk, events)) + tail)
        if cut is not None:
            await writer.drain()  # the cut events must leave before the connection drops
            return False
        return True

    def _fail(self, writer: asyncio.StreamWriter, request: Request, fail: FailSpec) -> bool:
        status = fail.get("status", 500)
        default_type = "requests" if status == 429 else "server_error" if status >= 500 else None
        body = completions.error(
            fail.get("message", f"standin scripted failure {status}"),
            fail.get("type", default_type or "invalid_request_error"),
            fail.get("code"),
            fail.get("param"),
        )
        extra: dict[str, str] = {}
        if (retry_after := fail.get("retry_after")) is not None:
            extra["Retry-After"] = _seconds(retry_after)
        if (retry_after_ms := fail.get("retry_after_ms")) is not None:
            extra["retry-after-ms"] = _seconds(retry_after_ms)
        return self._send(writer, request, status, body, extra)

    def _control(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        route = (request.method, request.path.removeprefix(CONTROL_PREFIX))
        if route == ("GET", "requests"):
            return self._send(writer, request, 200, self._state.records())
        if route not in {("POST", "script"), ("POST", "reset"), ("POST", "delay")}:
            message = f"Unknown control URL: {request.method} {request.path}."
            return self._send_error(writer, request, 404, message, "invalid_request_error")
        try:
            payload = json.loads(request.body) if request.body else None
            if route[1] == "reset":
                self._state.clear()
                return self._send(writer, request, 200, {"ok": True})
            if route[1] == "delay":
                self._state.set_delay(_number(payload, "seconds"))
                return self._send(writer, request, 200, {"seconds": self._state.delay})
            if not isinstance(payload, list):
                raise ValueError("POST /_standin/script wants a JSON list of behaviours")
            return self._send(writer, request, 200, {"queued": self._state.script(payload)})
        except ValueError as exc:
            return self._send_error(writer, request, 400, str(exc), "invalid_request_error")

    def _record(self, request: Request, body: Any) -> None:
        self._state.record(
            {
                "method": request.method,
                "path": request.path,
                "headers": request.headers,
                "body": body,
            }
        )

    @staticmethod
    def _send(
        writer: asyncio.StreamWriter,
        request: Request,
        status: int,
        payload: object,
        extra: dict[str, str] | None = None,
    ) -> bool:
        writer.write(json_response(status, payload, close=not request.keep_alive, extra=extra))
        return True

    def _send_error(
        self,
        writer: asyncio.StreamWriter,
        request: Request,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
    ) -> bool:
        return self._send(writer, request, status, completions.error(message, type_, None, param))


def _invalid_chat(body: Any) -> tuple[str, str | None] | None:
    """Why OpenAI would refuse this body (message, param), in the few ways tests care about."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object.", None
    if not isinstance(body.get("model"), str):
        return "You must provide a model parameter.", "model"
    if not isinstance(body.get("messages"), list):
        return "Missing required parameter: 'messages'.", "messages"
    n = body.get("n")
    if n is not None and (type(n) is not int or not 1 <= n <= MAX_CHOICES):
        return f"n must be an integer from 1 to {MAX_CHOICES}.", "n"
    return None


def _models() -> dict[str, Any]:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "standin"} for m in MODEL_IDS]
    return {"object": "list", "data": data}


def _number(payload: Any, key: str) -> float:
    value = payload.get(key) if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a JSON object with a number {key!r}")
    return float(value)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
