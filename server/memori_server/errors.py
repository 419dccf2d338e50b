"""Domain errors: what went wrong, in terms a caller can act on, without gRPC.

Every layer raises these (storage included, which knows nothing of gRPC); the one mapping to
gRPC statuses with rich details (google.rpc) is `rpc_errors`, applied where services are
registered, so no handler builds a status itself and no client input ends as UNKNOWN.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "memori.v1"


class Code(enum.IntEnum):
    """google.rpc.Code, the status codes gRPC uses, named here without importing grpc."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class ServiceError(Exception):
    """An error a client can trigger or must be told about; carries its status code."""

    code: Code = Code.INTERNAL
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
        return status_pb2.Status(code=int(self.code), message=self.message, details=packed)


class InvalidArgument(ServiceError):
    """Bad client input; each violation names the offending field (AIP-193 `BadRequest`)."""

    code = Code.INVALID_ARGUMENT
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

    code = Code.NOT_FOUND
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

    code = Code.FAILED_PRECONDITION

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


class RequestIdTakenOver(ServiceError):
    """The call outlived its claim's lease and a retry took the request id over."""

    code = Code.ABORTED
    reason = "REQUEST_ID_TAKEN_OVER"

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was taken over by a retry after this call's lease ran "
            "out; this call stored nothing, the retry's result stands"
        )


class EntityErased(PreconditionFailed):
    """The entity was erased while the call ran: the call's turn must not bring it back."""

    reason = "ENTITY_ERASED"

    def __init__(self, entity_id: str) -> None:
        super().__init__(
            f"entity {entity_id!r} was erased while this call ran; nothing of the call was "
            "stored. A new call starts afresh",
            "ENTITY",
            f"entity/{entity_id}",
            "an erased entity's calls begun before the erasure store nothing",
        )


class MemoryOff(PreconditionFailed):
    """Long-term memory was asked for, but this server runs without it."""

    reason = "MEMORY_OFF"

    def __init__(self) -> None:
        super().__init__(
            "long-term memory is off on this server; start it with --memory "
            "(MEMORI_MEMORY=on) to index sessions and use search and recall",
            "MEMORY",
            "memori.v1.MemoryService",
            "long-term memory is opt-in per server",
        )


class ReplyTooLarge(ServiceError):
    """The upstream's reply is larger than a message this server may send."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "REPLY_TOO_LARGE"

    def __init__(self, size: int | None, limit: int) -> None:
        # None: the reply was refused while it arrived, its whole size unknown.
        takes = f"takes {size} bytes, more" if size is not None else "is larger"
        super().__init__(
            f"the upstream's reply {takes} than this server sends in one "
            f"message ({limit}, --max-message-bytes); nothing was stored. Ask for less "
            "(max_tokens, n) or stream it"
        )


class ResultNotKept(PreconditionFailed):
    """A request id's call finished, but its result was too large to keep for a replay."""

    reason = "RESULT_NOT_KEPT"

    def __init__(self, request_id: str, session_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} already ran and its turn is stored in session "
            f"{session_id}, but its result was too large to keep for a replay; read the turn "
            "with ListMessages",
            "REQUEST_ID",
            f"request_id/{request_id}",
            "the result of this request id is not kept",
        )


class StorageUnavailable(ServiceError):
    """The database cannot be reached or failed transiently; the call may be retried."""

    code = Code.UNAVAILABLE
    reason = "DATABASE_UNAVAILABLE"


__all__ = [
    "ERROR_DOMAIN",
    "AttributionMismatch",
    "Code",
    "EntityErased",
    "InvalidArgument",
    "MemoryOff",
    "NoCurrentSession",
    "NotFound",
    "PreconditionFailed",
    "ReplyTooLarge",
    "RequestIdReused",
    "RequestIdTakenOver",
    "ResultNotKept",
    "ServiceError",
    "SessionNotFound",
    "StorageUnavailable",
]
