"""The one OpenAI-compatible upstream of a server process, through the official openai SDK.

One `AsyncOpenAI` (and so one pooled HTTP client) serves every call. Responses are taken
as the upstream's raw JSON text, which the service relays unchanged, instead of being
parsed into SDK models and dumped again: that is lossless and costs less per call. A
completion the SDK would send in one attempt goes out as the request the SDK built, without
its per-call layers (`single_attempt.py`).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import aiohttp
import httpx2
import openai
from openai._constants import RAW_RESPONSE_HEADER
from openai._response import AsyncAPIResponse

from memori_server.chat.single_attempt import COMPLETIONS_PATH, SingleAttempt
from memori_server.chat.upstream_errors import (
    UpstreamError,
    invalid_response,
    stream_error_event,
    transport_failure,
    unreachable,
    upstream_error,
)
from memori_server.config import Settings
from memori_server.errors import Code

T = TypeVar("T")
# The SDK refuses to start without a key; local servers (Ollama, vLLM) accept any.
PLACEHOLDER_API_KEY = "memori-no-key"


class Upstream:
    def __init__(self, settings: Settings) -> None:
        base_url = settings.upstream_base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = (
            settings.upstream_api_key.get_secret_value()
            or os.environ.get("OPENAI_API_KEY")
            or PLACEHOLDER_API_KEY
        )
        limits = httpx2.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        )
        http_client = openai.DefaultAioHttpClient(limits=limits)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=settings.upstream_max_retries,
            timeout=settings.upstream_timeout,
            http_client=http_client,
        )
        self.default_timeout = settings.upstream_timeout
        self.base_url = str(self._client.base_url)
        self.single_attempt = (
            SingleAttempt(
                self._client, http_client, self._post_through_sdk, settings.max_message_bytes
            )
            if SingleAttempt.applies(self._client, http_client, settings.upstream_max_retries)
            else None
        )

    async def close(self) -> None:
        if self.single_attempt is not None:
            self.single_attempt.close()
        await self._client.close()

    async def _post_through_sdk(self, body: bytes, upstream_timeout: float) -> bytes:
        # The SDK's generic POST (its documented way to call any endpoint): auth, retries,
        # timeouts and error classes as `create`, with a body the caller encoded (off the
        # event loop when it is large) and the raw bytes kept for the caller.
        response = await self._client.post(
            COMPLETIONS_PATH,
            cast_to=httpx2.Response,
            content=body,
            options={"timeout": upstream_timeout},
        )
        return response.content

    async def complete(self, body: bytes, upstream_timeout: float) -> tuple[str, dict[str, Any]]:
        """POST /chat/completions with the JSON `body`; returns (raw JSON text, parsed)."""
        try:
            if self.single_attempt is not None:
                content = await self.single_attempt.complete(body, upstream_timeout)
            else:
                content = await self._post_through_sdk(body, upstream_timeout)
            text = content.decode("utf-8")  # JSON is UTF-8, whatever the header says
        except (UnicodeError, LookupError) as error:  # also the SDK reading an error's body
            raise invalid_response(f"the body is not text in its charset ({error})") from error
        except openai.OpenAIError as error:
            raise upstream_error(error) from error
        except httpx2.HTTPError as error:  # the body broke off while being read
            raise transport_failure(error) from error
        except aiohttp.ClientError as error:  # one the SDK's transport does not map (not HTTP)
            raise unreachable(error) from error
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise invalid_response(f"not JSON: {type(error).__name__}") from error
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise invalid_response("no choices")
        return text, parsed

    async def stream(
        self, body: bytes, upstream_timeout: float
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """POST /chat/completions with a streaming JSON `body` ("stream": true in it);
        yields (raw chunk JSON, parsed chunk)."""
        try:
            response = await self._client.post(
                COMPLETIONS_PATH,
                cast_to=httpx2.Response,
                content=body,
                # The SDK's streamed-response mode: the body is not read before returning.
                options={"timeout": upstream_timeout, "headers": {RAW_RESPONSE_HEADER: "stream"}},
            )
        except openai.OpenAIError as error:
            raise upstream_error(error) from error
        except (UnicodeError, LookupError) as error:  # the SDK reading an error's body
            raise invalid_response(f"the body is not text in its charset ({error})") from error
        except aiohttp.ClientError as error:  # one the SDK's transport does not map (not HTTP)
            raise unreachable(error) from error
        http_response = (
            response.http_response if isinstance(response, AsyncAPIResponse) else response
        )
        try:
            async for data in _sse_data(_lines(http_response.aiter_bytes())):
                if data == "[DONE]":
                    return
                yield data, _chunk(data)
        except httpx2.HTTPError as error:
            raise transport_failure(error) from error
        finally:
            await http_response.aclose()


async def bounded(chunks: AsyncIterator[T], seconds: float | None) -> AsyncIterator[T]:
    """`chunks`, ending DEADLINE_EXCEEDED once `seconds` have passed in all (None: unbounded).

    A per-read timeout never ends a stream that trickles forever; this bounds its total.
    """
    if seconds is None:
        async for chunk in chunks:
            yield chunk
        return
    deadline = asyncio.get_running_loop().time() + seconds
    iterator = aiter(chunks)
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UpstreamError(
                    Code.DEADLINE_EXCEEDED,
                    "UPSTREAM_TIMEOUT",
                    f"the stream ran longer than this server allows a call without a deadline "
                    f"({seconds:g} s); nothing was stored. Set a deadline on the call to go "
                    "beyond it.",
                ) from None
            yield chunk
    finally:
        closing = getattr(iterator, "aclose", None)
        if closing is not None:
            await closing()


def _chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise invalid_response(f"a stream event is not JSON: {type(error).__name__}") from error
    if not isinstance(chunk, dict):
        raise invalid_response("a stream event is not a JSON object")
    if "error" in chunk:
        raise stream_error_event(chunk)
    return chunk


# json.dumps with options builds a new encoder per call; the body needs one.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_body(
    parameters: dict[str, Any], messages: Sequence[bytes | bytearray], *, stream: bool
) -> bytes:
    """The upstream request body: the parameters, then the encoded messages joined as they
    are (a window held in memory is not encoded again), then `"stream":true` when streaming.

    What the SDK would send, without its pass over every message against its types.
    """
    head = _COMPACT_JSON.encode(parameters).encode()
    opening = head[:-1] + b',"messages":[' if parameters else b'{"messages":['
    closing = b'],"stream":true}' if stream else b"]}"
    return b"".join((opening, b",".join(messages), closing))


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The lines of an event stream, which is UTF-8 whatever its header says (SSE spec)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    try:
        async for chunk in chunks:
            pending += decoder.decode(chunk)
            # A trailing CR may be the first half of a CRLF: keep it for the next chunk.
            cut = len(pending) - 1 if pending.endswith("\r") else len(pending)
            *complete, rest = _LINE_BREAK.split(pending[:cut])
            pending = rest + pending[cut:]
            for line in complete:
                yield line
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise invalid_response("a stream event is not UTF-8") from error
    for line in _LINE_BREAK.split(pending):
        yield line


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each server-sent event (lines joined), in order."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)
