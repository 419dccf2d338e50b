"""A completion the openai SDK would send in one attempt, sent without its per-call layers.

With no retries configured (the default), the SDK's `post` sends one request. Its work per
call (request options copied twice, headers merged and validated, an httpx2 request built
and carried through its aiohttp adapter, a response wrapper) cost this server 0.4-0.5 ms of
CPU per completion on the event loop, a quarter of all it spent on one. Everything in that
work that depends on the call is the body and the read timeout, so:

- the SDK builds the request once, at start: its URL and headers are what every call sends
  (the API key, its `User-Agent` and `X-Stainless-*` headers, the retry count 0), with the
  call's own read timeout in `X-Stainless-Read-Timeout`, as the SDK sets it;
- the request goes out on the aiohttp session of the SDK's own transport (made as the
  transport makes it): one connection pool, one TLS context, the same socket timeouts
  (connect, pool and read: the call's time left), no redirect followed by aiohttp;
- whatever is not a 2xx answer becomes the SDK's own outcome: a 4xx or 5xx the exception
  its `post` raises (`APIStatusError` built by the SDK from the response), a transport
  failure the transport's mapping and the SDK's `APITimeoutError`/`APIConnectionError`, a
  redirect (the upstream did nothing) is sent again through the SDK, which follows it.

It is used only where it is the same request: a client the server built itself (an API key,
no auth provider), no retries, and no proxy for the upstream's URL. Otherwise, and for
streams, the SDK's `post` runs as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import httpx2
import openai
import yarl
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._models import FinalRequestOptions
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport, map_aiohttp_exceptions

COMPLETIONS_PATH = "/chat/completions"
# Computed by aiohttp per request (its own Accept-Encoding names what it can decode).
_SET_PER_REQUEST = frozenset({"host", "content-length", "accept-encoding", "transfer-encoding"})
# A body aiohttp has decompressed already: not to be decoded again.
_DECODED = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class SingleAttempt:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        http_client: httpx2.AsyncClient,
        send_through_sdk: Callable[[bytes, float], Awaitable[bytes]],
    ) -> None:
        template = client._build_request(
            FinalRequestOptions.construct(method="post", url=COMPLETIONS_PATH, content=b"")
        )
        self._client = client
        transport = http_client._transport
        assert isinstance(transport, AiohttpTransport)
        self._transport = transport
        self._send_through_sdk = send_through_sdk
        self._template = template
        self.url = yarl.URL(str(template.url), encoded=True)  # parsed once, not per call
        self._headers = {
            key: value
            for key, value in template.headers.multi_items()
            if key.lower() not in _SET_PER_REQUEST
        }

    def _session(self) -> aiohttp.ClientSession:
        """The transport's session, made as the transport makes it on its first request."""
        if not isinstance(self._transport.client, aiohttp.ClientSession):
            self._transport.client = self._transport.get_client()
        return self._transport.client

    @staticmethod
    def applies(
        client: openai.AsyncOpenAI, http_client: httpx2.AsyncClient, max_retries: int
    ) -> bool:
        """Whether one attempt of the SDK is this request: no retries, a plain API key, and
        the client's own transport (not a proxy's) for the upstream's URL."""
        if max_retries != 0 or client._provider_runtime is not None:
            return False
        url = client._prepare_url(COMPLETIONS_PATH)
        transport = http_client._transport_for_url(url)
        return transport is http_client._transport and isinstance(transport, AiohttpTransport)

    async def complete(self, body: bytes, seconds: float) -> bytes:
        """POST the body; the answer's bytes, or the SDK's exception for any other outcome."""
        headers = {**self._headers, "x-stainless-read-timeout": str(float(seconds))}
        try:
            with map_aiohttp_exceptions():
                async with self._session().post(
                    self.url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(
                        sock_connect=seconds, sock_read=seconds, connect=seconds
                    ),
                ) as response:
                    content = await response.read()
                    status, raw_headers = response.status, response.raw_headers
        except timeout_exceptions() as error:
            raise openai.APITimeoutError(request=self._template) from error
        except request_exceptions() as error:
            raise openai.APIConnectionError(request=self._template) from error
        if 200 <= status < 300:
            return content
        if 300 <= status < 400:  # the SDK follows redirects; the upstream did no work
            return await self._send_through_sdk(body, seconds)
        kept = [(key, value) for key, value in raw_headers if key.lower() not in _DECODED]
        failed = httpx2.Response(status, headers=kept, content=content, request=self._template)
        raise self._client._make_status_error_from_response(failed)
