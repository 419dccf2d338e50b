"""Upstream failures as gRPC statuses (DESIGN §5), with the upstream's own words kept.

The ErrorInfo metadata carries the upstream HTTP status, message, type and code, so a client
can tell an upstream 500 from a database outage and rebuild the error the openai SDK would
have raised.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import time

import aiohttp
import httpx2
import openai
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from memori_server.chat.storable import valid_unicode
from memori_server.errors import ERROR_DOMAIN, Code, ServiceError

log = logging.getLogger(__name__)
MAX_UPSTREAM_MESSAGE_CHARS = 2000
MAX_RETRY_AFTER_SECONDS = 86400.0
_BY_HTTP_STATUS = {
    400: Code.INVALID_ARGUMENT,
    401: Code.FAILED_PRECONDITION,  # the server's upstream key, not the caller's
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    408: Code.DEADLINE_EXCEEDED,
    409: Code.ABORTED,
    413: Code.INVALID_ARGUMENT,
    422: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
}


class UpstreamError(ServiceError):
    """The upstream refused, failed or could not be reached."""

    def __init__(
        self,
        code: Code,
        reason: str,
        message: str,
        *,
        http_status: int | None = None,
        upstream_message: str = "",
        upstream_type: str = "",
        upstream_code: str = "",
        param: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.http_status = http_status
        self.upstream_message = upstream_message
        self.upstream_type = upstream_type
        self.upstream_code = upstream_code
        self.param = param
        self.retry_after = retry_after

    def details(self) -> list[Message]:
        metadata = {
            "upstream_status": str(self.http_status) if self.http_status else "",
            "upstream_message": self.upstream_message,
            "upstream_type": self.upstream_type,
            "upstream_code": self.upstream_code,
            "upstream_param": self.param,
        }
        info = error_details_pb2.ErrorInfo(
            reason=self.reason,
            domain=ERROR_DOMAIN,
            metadata={key: value for key, value in metadata.items() if value},
        )
        details: list[Message] = [info]
        if self.code == Code.INVALID_ARGUMENT:
            field = f"request.{self.param}" if self.param else "request"
            details.insert(
                0,
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=field, description=self.upstream_message or self.message
                        )
                    ]
                ),
            )
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(int(self.retry_after * 1000))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        return details


def _retry_after(headers: httpx2.Headers) -> float | None:
    """When the upstream says to retry, in seconds, within sane bounds (0 to a day)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        with contextlib.suppress(ValueError):
            return _bounded_delay(float(milliseconds) / 1000)
    seconds = headers.get("retry-after")
    if not seconds:
        return None
    with contextlib.suppress(ValueError):
        return _bounded_delay(float(seconds))
    try:
        when = email.utils.parsedate_to_datetime(seconds)
    except (TypeError, ValueError, OverflowError):
        return None
    return _bounded_delay(when.timestamp() - time.time())


def _bounded_delay(seconds: float) -> float | None:
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _text(value: object) -> str:
    """An upstream's words, short and valid UTF-8 (JSON escapes can spell lone surrogates,
    which no status message or detail can carry)."""
    return "" if value is None else valid_unicode(str(value)[:MAX_UPSTREAM_MESSAGE_CHARS])


def from_status_error(error: openai.APIStatusError) -> UpstreamError:
    status = error.status_code
    body = error.body if isinstance(error.body, dict) else {}
    upstream_message = _text(body.get("message")) or _text(error.message)
    code = _BY_HTTP_STATUS.get(
        status,
        Code.UNAVAILABLE if status >= 500 else Code.FAILED_PRECONDITION,
    )
    if status == 401:
        summary = "the upstream rejected the server's API key; the operator must fix "
        summary += "MEMORI_UPSTREAM_API_KEY"
    elif status >= 500:
        summary = "the upstream failed; retry later"
    else:
        summary = "the upstream refused the request"
    return UpstreamError(
        code,
        "UPSTREAM_ERROR",
        f"{summary} (HTTP {status}): {upstream_message}",
        http_status=status,
        upstream_message=upstream_message,
        upstream_type=_text(body.get("type")),
        upstream_code=_text(body.get("code")),
        param=_text(body.get("param")),
        retry_after=_retry_after(error.response.headers),
    )


def upstream_error(error: openai.OpenAIError) -> UpstreamError:
    """The status a client gets for an error the openai SDK raised."""
    if isinstance(error, openai.APIStatusError):
        return from_status_error(error)
    if isinstance(error, openai.APITimeoutError) and not _refused(error):
        return UpstreamError(
            Code.DEADLINE_EXCEEDED,
            "UPSTREAM_TIMEOUT",
            "the upstream did not answer within the call's deadline",
        )
    if isinstance(error, openai.APIConnectionError):
        return unreachable(error)
    log.warning("unexpected upstream failure", extra={"error": f"{type(error).__name__}: {error}"})
    return invalid_response(type(error).__name__)


def root_cause(error: BaseException) -> BaseException:
    """The innermost cause: the transport's own error says most."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def unreachable(error: BaseException) -> UpstreamError:
    """No usable answer came over the connection (refused, reset, not HTTP)."""
    cause = root_cause(error)
    # The transport's words name the upstream's host and address, which are the
    # operator's internals: the log keeps them, the caller gets the kind of failure.
    log.warning("upstream unreachable", extra={"error": f"{type(cause).__name__}: {cause}"})
    return UpstreamError(
        Code.UNAVAILABLE,
        "UPSTREAM_UNREACHABLE",
        f"cannot reach the upstream ({type(cause).__name__}); retry later",
    )


def transport_failure(error: BaseException) -> UpstreamError:
    """A response that broke off while being read; details go to the log only."""
    log.warning("upstream response broke off", extra={"error": f"{type(error).__name__}: {error}"})
    return broken_stream(type(root_cause(error)).__name__)


def _refused(error: BaseException) -> bool:
    """A connection that failed at once, which the aiohttp transport reports as a timeout.

    The openai SDK's vendored aiohttp transport maps aiohttp.ClientConnectorError
    (connection refused, unknown host) to httpx2.ConnectTimeout; it is no timeout.
    """
    cause = error.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(
            cause, aiohttp.ServerTimeoutError | TimeoutError
        ):
            return True
        cause = cause.__cause__
    return False


def invalid_response(problem: str) -> UpstreamError:
    return UpstreamError(
        Code.UNAVAILABLE,
        "UPSTREAM_INVALID_RESPONSE",
        f"the upstream answered with something that is not a chat completion: {problem}",
    )


def broken_stream(problem: str) -> UpstreamError:
    return UpstreamError(
        Code.UNAVAILABLE,
        "UPSTREAM_STREAM_BROKEN",
        f"the upstream stream broke off before it finished ({problem}); nothing was stored, "
        "retry the call",
    )


def stream_error_event(payload: dict[str, object]) -> UpstreamError:
    """An error the upstream sent inside an SSE stream ({"error": {...}})."""
    error = payload.get("error")
    body = error if isinstance(error, dict) else {}
    message = _text(body.get("message")) or _text(error)
    return UpstreamError(
        Code.UNAVAILABLE,
        "UPSTREAM_ERROR",
        f"the upstream failed during the stream: {message}",
        upstream_message=message,
        upstream_type=_text(body.get("type")),
        upstream_code=_text(body.get("code")),
    )
