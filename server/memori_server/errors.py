"""Domain errors and their one mapping to gRPC statuses with rich details (google.rpc).

Handlers and the storage layer raise these; `maps_errors` turns them into statuses, so no
handler builds a status itself and no client input ends as UNKNOWN.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "memori.v1"
log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error a client can trigger or must be told about; carries its gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)]

    def to_status(self) -> status_pb2.Status:
        packed = []
        for detail in self.details():
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


class InvalidArgument(ServiceError):
    """Bad client input; each violation names the offending field (AIP-193 `BadRequest`)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{field}: {text}" for field, text in self.violations))

    def details(self) -> list[Message]:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=text)
                for field, text in self.violations
            ]
        )
        return [bad_request, *super().details()]


class NotFound(ServiceError):
    """The resource does not exist for this caller (never says whether another tenant has it)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str, message: str) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(message)

    def details(self) -> list[Message]:
        info = error_details_pb2.ResourceInfo(
            resource_type=self.resource_type, resource_name=self.resource_name
        )
        return [info, *super().details()]


class SessionNotFound(NotFound):
    reason = "SESSION_NOT_FOUND"

    def __init__(self, session_id: str) -> None:
        super().__init__("memori.v1.Session", session_id, f"session {session_id} does not exist")


class NoCurrentSession(NotFound):
    reason = "NO_CURRENT_SESSION"

    def __init__(self, entity_id: str, process_id: str, idle_seconds: float) -> None:
        super().__init__(
            "memori.v1.Session",
            f"current session of entity {entity_id!r}, process {process_id!r}",
            f"entity {entity_id!r} / process {process_id!r} has no session active within "
            f"the last {idle_seconds:g} s; call Reset to start one or Set to resume one",
        )


class PreconditionFailed(ServiceError):
    """A request that is well-formed but conflicts with the stored state (AIP-193)."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, kind: str, subject: str, description: str) -> None:
        super().__init__(message)
        self.violation = error_details_pb2.PreconditionFailure.Violation(
            type=kind, subject=subject, description=description
        )

    def details(self) -> list[Message]:
        failure = error_details_pb2.PreconditionFailure(violations=[self.violation])
        return [failure, *super().details()]


class AttributionMismatch(PreconditionFailed):
    """The session exists in this tenant but is bound to another attribution."""

    reason = "SESSION_ATTRIBUTION_MISMATCH"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"session {session_id} belongs to another attribution; use a session created "
            "for this entity and process, or call Reset to start one",
            "SESSION_ATTRIBUTION",
            f"memori.v1.Session/{session_id}",
            "the session is bound to the attribution that created it",
        )


class RequestIdReused(PreconditionFailed):
    """The request id was used before with a different request."""

    reason = "REQUEST_ID_REUSED"

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"request_id {request_id!r} was already used for a different request; "
            "use a new request_id for a new request",
            "REQUEST_ID",
            f"request_id/{request_id}",
            "a request_id identifies one request; retries must repeat it unchanged",
        )


class StorageUnavailable(ServiceError):
    """The database cannot be reached or failed transiently; the call may be retried."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "DATABASE_UNAVAILABLE"


_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_Self = TypeVar("_Self")
Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[_Self, _Req, Context], Awaitable[_Resp]]


async def abort_with(context: Context, error: ServiceError) -> None:
    """Abort the call with `error`'s status; its details travel as grpc-status-details-bin."""
    status = rpc_status.to_status(error.to_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


async def _abort_for(error: Exception, context: Context, rpc: str) -> None:
    """Abort the call with the status `error` maps to; always raises."""
    if isinstance(error, ServiceError):
        if isinstance(error, StorageUnavailable):
            log.warning("database unavailable", extra={"rpc": rpc, "error": error.message})
        await abort_with(context, error)
    log.error("unexpected error", extra={"rpc": rpc}, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal server error; see server log")


def maps_errors(handler: Handler[_Self, _Req, _Resp]) -> Handler[_Self, _Req, _Resp]:
    """Turn domain errors into rich statuses and unexpected ones into a logged INTERNAL."""

    @functools.wraps(handler)
    async def wrapper(self: _Self, request: _Req, context: Context) -> _Resp:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort_for(error, context, handler.__name__)
        raise AssertionError("unreachable: abort raises")

    return wrapper


StreamHandler = Callable[[_Self, _Req, Context], AsyncIterator[_Resp]]


def maps_stream_errors(
    handler: StreamHandler[_Self, _Req, _Resp],
) -> StreamHandler[_Self, _Req, _Resp]:
    """`maps_errors` for server-streaming handlers: the error ends the stream's status."""

    @functools.wraps(handler)
    async def wrapper(self: _Self, request: _Req, context: Context) -> AsyncIterator[_Resp]:
        try:
            async for response in handler(self, request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort_for(error, context, handler.__name__)

    return wrapper


__all__ = [
    "ERROR_DOMAIN",
    "AttributionMismatch",
    "InvalidArgument",
    "NoCurrentSession",
    "NotFound",
    "PreconditionFailed",
    "RequestIdReused",
    "ServiceError",
    "SessionNotFound",
    "StorageUnavailable",
    "abort_with",
    "maps_errors",
    "maps_stream_errors",
]
