"""A completion the openai SDK would send in one attempt, sent without its per-call layers.

With no retries configured (the default), the SDK's `post` sends one request. Its work per
call (request options copied twice, headers merged and validated, an httpx2 request built
and carried through its aiohttp adapter, a response wrapper) cost this server 0.4-0.5 ms of
CPU per completion on the event loop, a quarter of all it spent on one; aiohttp's own
request and response handling another 0.16 ms. Everything in that work that depends on the
call is the body and the read timeout, so:

- the SDK builds the request once, at start: its URL and headers are what every call sends
  (the API key, its `User-Agent` and `X-Stainless-*` headers, the retry count 0), with the
  call's own read timeout in `X-Stainless-Read-Timeout`, as the SDK sets it;
- the request goes out on keep-alive connections of our own (`upstream_connections.py`),
  set up as the SDK's aiohttp transport is: its TLS context, connection limit, keep-alive
  expiry, local address or Unix socket; the call's time left bounds connecting, sending and
  the whole answer; no redirect is followed there;
- whatever is not a 2xx answer becomes the SDK's own outcome: a 4xx or 5xx the exception
  its `post` raises (`APIStatusError` built by the SDK from the response), a transport
  failure the SDK's `APITimeoutError`/`APIConnectionError`, a redirect (the upstream did
  nothing) is sent again through the SDK, which follows it.

It is used only where it is the same request: a client the server built itself (an API key,
no auth provider), no retries, and no proxy for the upstream's URL. Otherwise, and for
streams, the SDK's `post` runs as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx2
import openai
import yarl
from openai._models import FinalRequestOptions
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport

from memori_server.chat.upstream_connections import (
    AnswerTooLarge,
    BadAnswer,
    BrokenConnection,
    Origin,
    UpstreamConnections,
)
from memori_server.chat.upstream_errors import invalid_response
from memori_server.errors import ReplyTooLarge

COMPLETIONS_PATH = "/chat/completions"
# Set per request by the connections (their own Accept-Encoding names what they decode).
_SET_PER_REQUEST = frozenset(
    {
        "host",
        "content-length",
        "accept-encoding",
        "transfer-encoding",
        "connection",
        "x-stainless-read-timeout",
    }
)
# A body the connections have decompressed already: not to be decoded again.
_DECODED = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class SingleAttempt:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        http_client: httpx2.AsyncClient,
        send_through_sdk: Callable[[bytes, float], Awaitable[bytes]],
        max_answer_bytes: int,
    ) -> None:
        template = client._build_request(
            FinalRequestOptions.construct(method="post", url=COMPLETIONS_PATH, content=b"")
        )
        self._client = client
        transport = http_client._transport
        assert isinstance(transport, AiohttpTransport)
        self._send_through_sdk = send_through_sdk
        self._template = template
        url = yarl.URL(str(template.url), encoded=True)
        headers = [
            (key, value)
            for key, value in template.headers.multi_items()
            if key.lower() not in _SET_PER_REQUEST
        ]
        self._connections = UpstreamConnections(
            Origin(url, transport.ssl_context, transport.local_address, transport.uds),
            headers,
            limit=transport.limits.max_connections,
            keepalive_expiry=transport.limits.keepalive_expiry,
            max_answer_bytes=max_answer_bytes,
        )

    def close(self) -> None:
        self._connections.close()

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
        timeout = b"x-stainless-read-timeout: %s\r\n" % str(float(seconds)).encode()
        try:
            answer = await self._connections.post(body, timeout, seconds)
        except TimeoutError as error:
            raise openai.APITimeoutError(request=self._template) from error
        except BrokenConnection as error:
            raise openai.APIConnectionError(request=self._template) from error
        except BadAnswer as error:
            raise invalid_response(str(error)) from error
        except AnswerTooLarge as error:
            raise ReplyTooLarge(None, error.limit) from None
        status = answer.status
        if 200 <= status < 300:
            return answer.body
        if 300 <= status < 400:  # the SDK follows redirects; the upstream did no work
            return await self._send_through_sdk(body, seconds)
        kept = [(key, value) for key, value in answer.headers if key.lower() not in _DECODED]
        failed = httpx2.Response(status, headers=kept, content=answer.body, request=self._template)
        raise self._client._make_status_error_from_response(failed)
