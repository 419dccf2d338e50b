"""Failed chat calls as the `openai` exceptions an app already handles.

The gRPC status decides the class; when the service relays an upstream failure, the
upstream's own HTTP status, message, type, code and param (ErrorInfo metadata) decide it,
exactly as the openai SDK would have from the HTTP response. Session misuse raises the
client's own `SessionError` instead, and recall asked of a server without long-term memory
raises `MemoryOff`.
"""

from __future__ import annotations

from typing import Any

import grpc
import httpx2
import openai

from memori_client.errors import (
    MemoryOff,
    SessionAttributionMismatch,
    SessionError,
    SessionNotFound,
)
from memori_client.status import CallStatus

# What the service's own refusals (no upstream status attached) look like over HTTP.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
}
# Reasons meaning the call never got an HTTP answer from the upstream.
_NO_ANSWER = frozenset({"UPSTREAM_UNREACHABLE", "UPSTREAM_STREAM_BROKEN"})
_SESSION_ERRORS: dict[str, type[SessionError]] = {
    "SESSION_ATTRIBUTION_MISMATCH": SessionAttributionMismatch,
    "SESSION_NOT_FOUND": SessionNotFound,
}


def chat_error(
    status: CallStatus,
    client: openai.OpenAI | openai.AsyncOpenAI,
    request: httpx2.Request,
    session_id: str,
) -> Exception:
    """The exception `create(...)` raises for a failed ChatService call."""
    session_error = _SESSION_ERRORS.get(status.reason)
    if session_error is not None:
        return session_error(status.message, session_id=session_id, reason=status.reason)
    if status.reason == "MEMORY_OFF":  # Memori(recall=True) against a server without --memory
        return MemoryOff(
            f"{status.code.name}: {status.message}", code=status.code.name, reason=status.reason
        )
    if status.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return openai.APITimeoutError(request=request)
    if status.reason in _NO_ANSWER or (
        status.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        and not status.reason
    ):
        # No ErrorInfo: the service itself was not reached (or the call was cut).
        return openai.APIConnectionError(message=_connection_message(status), request=request)
    http_status = status.upstream_status or _http_status(status)
    headers = {"x-memori-grpc-status": status.code.name}
    if status.retry_after is not None:
        headers["retry-after-ms"] = str(round(status.retry_after * 1000))
    response = httpx2.Response(http_status, headers=headers, request=request)
    return client._make_status_error(  # the SDK's own status → class table
        f"Error code: {http_status} - {status.message}", body=_body(status), response=response
    )


def _http_status(status: CallStatus) -> int:
    if (
        status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        and not status.reason
        and "larger than max" in status.message
    ):
        return 413  # gRPC's own refusal of an oversize message: not a rate limit
    return _HTTP_STATUS.get(status.code, 500)


def _body(status: CallStatus) -> dict[str, Any]:
    """The `error` object of an OpenAI error body, as `APIError.code/param/type` read it."""
    meta = status.metadata
    param = meta.get("upstream_param") or (status.violations[0][0] if status.violations else None)
    return {
        "message": meta.get("upstream_message") or status.message,
        "type": meta.get("upstream_type") or None,
        "code": meta.get("upstream_code") or status.reason or None,
        "param": param,
    }


def _connection_message(status: CallStatus) -> str:
    return f"Connection error: {status.code.name}: {status.message}".rstrip(": ")
