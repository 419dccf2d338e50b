"""The one OpenAI-compatible upstream of a server process, through the official openai SDK.

One `AsyncOpenAI` (and so one pooled HTTP client) serves every call. Responses are taken
as the upstream's raw JSON text, which the service relays unchanged, instead of being
parsed into SDK models and dumped again: that is lossless and costs less per call.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai

from memori_server.chat.upstream_errors import (
    broken_stream,
    invalid_response,
    stream_error_event,
    upstream_error,
)
from memori_server.config import Settings

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
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=settings.upstream_max_retries,
            timeout=settings.upstream_timeout,
            http_client=openai.DefaultAioHttpClient(limits=limits),
        )
        self.default_timeout = settings.upstream_timeout
        self.base_url = str(self._client.base_url)

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self, body: dict[str, Any], upstream_timeout: float
    ) -> tuple[str, dict[str, Any]]:
        """POST /chat/completions; returns (raw JSON text, parsed object)."""
        try:
            # The SDK's generic POST (its documented way to call any endpoint): auth, retries,
            # timeouts and error classes as `create`, without re-validating a body that was
            # built from validated input, and with the raw text kept for the caller.
            response = await self._client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body=body,
                options={"timeout": upstream_timeout},
            )
            text = response.text
        except openai.OpenAIError as error:
            raise upstream_error(error) from error
        except httpx2.HTTPError as error:  # the body broke off while being read
            raise broken_stream(f"{type(error).__name__}: {error}") from error
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise invalid_response(f"not JSON: {error}") from error
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise invalid_response("no choices")
        return text, parsed

    async def stream(
        self, body: dict[str, Any], upstream_timeout: float
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """POST /chat/completions with stream=true; yields (raw chunk JSON, parsed chunk)."""
        try:
            async with self._client.chat.completions.with_streaming_response.create(
                **_sdk_arguments(body), stream=True, timeout=upstream_timeout
            ) as response:
                async for data in _sse_data(response.http_response.aiter_lines()):
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError as error:
                        raise invalid_response(f"a stream event is not JSON: {error}") from error
                    if not isinstance(chunk, dict):
                        raise invalid_response("a stream event is not a JSON object")
                    if "error" in chunk:
                        raise stream_error_event(chunk)
                    yield data, chunk
        except openai.OpenAIError as error:
            raise upstream_error(error) from error
        except httpx2.HTTPError as error:
            raise broken_stream(f"{type(error).__name__}: {error}") from error


def _sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """`create(...)` keywords that send `body` exactly as given.

    The messages go in `extra_body`, which the SDK merges into the JSON over its typed
    arguments without looking inside. Given as the typed `messages` argument, they would be
    re-walked against the SDK's type definitions on every call: about 0.1 ms per message,
    35 ms for a 300-message history, which is most of the proxy's cost. The body was built
    from validated input already, so nothing is lost by skipping that pass.
    """
    rest = {key: value for key, value in body.items() if key != "model"}
    return {"model": body["model"], "messages": [], "extra_body": rest}


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
