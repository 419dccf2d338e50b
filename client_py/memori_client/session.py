"""`memori.session`: the session the next call goes to, and the service's view of sessions.

`id`, `reset()` and `set()` are local and instant: the service creates a session on its first
call. The other methods ask SessionService: blocking on the sync channel, or awaitable on
the event loop's channel through `memori.session.aio`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from memori_proto.v1 import common_pb2, session_pb2

from memori_client import identifiers
from memori_client.errors import (
    ServiceError,
    SessionAttributionMismatch,
    SessionError,
    SessionNotFound,
)
from memori_client.request_pb import chat_messages
from memori_client.roles import ROLE_NAMES
from memori_client.status import read_status

if TYPE_CHECKING:
    from memori_client.memori import Memori

T = TypeVar("T")
_PAGE = 1000
_DEFAULT_TIMEOUT = 30.0  # session calls are small: without Memori(timeout=...) they get this


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    entity_id: str
    process_id: str
    create_time: datetime
    update_time: datetime
    """Last activity."""
    message_count: int

    @classmethod
    def from_pb(cls, session: session_pb2.Session) -> SessionInfo:
        return cls(
            id=session.id,
            entity_id=session.attribution.entity_id,
            process_id=session.attribution.process_id,
            create_time=session.create_time.ToDatetime(tzinfo=UTC),
            update_time=session.update_time.ToDatetime(tzinfo=UTC),
            message_count=session.message_count,
        )


class SessionManager:
    def __init__(self, memori: Memori) -> None:
        self._memori = memori
        self.aio = AsyncSessionManager(memori)
        """The same SessionService calls for async code: `await memori.session.aio.history()`."""

    @property
    def id(self) -> str:
        """The UUID v4 of the session the next call of this Memori goes to."""
        return self._memori.call_identity(require_attribution=False)[0]

    def reset(self) -> SessionManager:
        """Start a new conversation: a fresh session id, nothing of the old one is sent."""
        self._memori.reset_session()
        return self

    def set(self, session_id: str) -> SessionManager:
        """Continue the session with this UUID v4 (ValueError, before any RPC, if it is not)."""
        self._memori.set_session(session_id)
        return self

    def resume_current(self) -> bool:
        """Continue the attribution's current session, if it was active within the service's
        idle window (24 h by default). False, and the id unchanged, when there is none."""
        return self._drive(_resume_current(self._memori))

    def recent(self, within: timedelta | None = None) -> list[SessionInfo]:
        """This attribution's sessions, newest activity first; `within` limits to recent ones."""
        return self._drive(_recent(self._memori, within))

    def history(self) -> list[dict[str, Any]]:
        """The stored messages of the current session, oldest first, in OpenAI's shape."""
        return self._drive(_history(self._memori))

    def delete(self) -> int:
        """Delete the current session and its messages (0 if it was never used), then start
        a fresh one. Returns how many messages were deleted."""
        return self._drive(_delete(self._memori))

    def append_messages(
        self,
        messages: Iterable[Any],
        *,
        session_id: str | None = None,
        request_id: str | None = None,
        create_time: datetime | None = None,
    ) -> list[int]:
        """Store messages without a completion (an import, a turn run elsewhere) in this
        session, or in `session_id`; returns their sequence numbers. See
        `Memori.append_messages`."""
        steps = _append(self._memori, messages, session_id, request_id, create_time)
        return self._drive(steps)

    def _drive(self, steps: Steps[T]) -> T:
        stub = self._memori.connection.sessions()
        metadata, timeout = self._memori.connection.metadata, _timeout(self._memori)
        step: Step | _Done[T] = next(steps)
        while not isinstance(step, _Done):
            method, request, session_id = step
            try:
                reply = getattr(stub, method)(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as rpc_error:
                step = _throw(steps, rpc_error, session_id)
            else:
                step = _send(steps, reply)
        return step.value


class AsyncSessionManager:
    """`memori.session.aio`: the SessionService calls of `memori.session`, for event loops."""

    def __init__(self, memori: Memori) -> None:
        self._memori = memori

    async def resume_current(self) -> bool:
        return await self._drive(_resume_current(self._memori))

    async def recent(self, within: timedelta | None = None) -> list[SessionInfo]:
        return await self._drive(_recent(self._memori, within))

    async def history(self) -> list[dict[str, Any]]:
        return await self._drive(_history(self._memori))

    async def delete(self) -> int:
        return await self._drive(_delete(self._memori))

    async def append_messages(
        self,
        messages: Iterable[Any],
        *,
        session_id: str | None = None,
        request_id: str | None = None,
        create_time: datetime | None = None,
    ) -> list[int]:
        steps = _append(self._memori, messages, session_id, request_id, create_time)
        return await self._drive(steps)

    async def _drive(self, steps: Steps[T]) -> T:
        stub = self._memori.connection.aio_sessions()
        metadata, timeout = self._memori.connection.metadata, _timeout(self._memori)
        step: Step | _Done[T] = next(steps)
        while not isinstance(step, _Done):
            method, request, session_id = step
            try:
                reply = await getattr(stub, method)(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as rpc_error:
                step = _throw(steps, rpc_error, session_id)
            else:
                step = _send(steps, reply)
        return step.value


# The session calls, written once for both managers: each yields (method, request, session
# id) and receives the reply, or the mapped exception thrown in; the managers make the calls.
Step = tuple[str, Any, str]
Steps = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    value: T


def _send(steps: Steps[T], reply: Any) -> Step | _Done[T]:
    try:
        return steps.send(reply)
    except StopIteration as finished:
        return _Done(finished.value)


def _throw(steps: Steps[T], rpc_error: grpc.RpcError, session_id: str) -> Step | _Done[T]:
    error = _session_error(rpc_error, session_id)
    error.__cause__ = rpc_error
    try:
        return steps.throw(error)
    except StopIteration as finished:
        return _Done(finished.value)


def _timeout(memori: Memori) -> float:
    return memori.timeout or _DEFAULT_TIMEOUT


def _resume_current(memori: Memori) -> Steps[bool]:
    _, attribution = memori.call_identity()
    try:
        reply = yield ("Get", session_pb2.GetRequest(attribution=attribution), "")
    except SessionNotFound:
        return False
    memori.set_session(reply.session.id)
    return True


def _recent(memori: Memori, within: timedelta | None) -> Steps[list[SessionInfo]]:
    _, attribution = memori.call_identity()
    request = session_pb2.ListRequest(attribution=attribution, page_size=_PAGE)
    if within is not None:
        request.active_within.CopyFrom(duration_pb2.Duration(seconds=int(within.total_seconds())))
    found: list[SessionInfo] = []
    while True:
        reply = yield ("List", request, "")
        found.extend(SessionInfo.from_pb(item) for item in reply.sessions)
        if not reply.next_page_token:
            return found
        request.page_token = reply.next_page_token


def _history(memori: Memori) -> Steps[list[dict[str, Any]]]:
    session_id, attribution = memori.call_identity()
    request = session_pb2.ListMessagesRequest(
        session_id=session_id, attribution=attribution, page_size=_PAGE
    )
    messages: list[dict[str, Any]] = []
    while True:
        try:
            reply = yield ("ListMessages", request, session_id)
        except SessionNotFound:  # nothing was sent in it yet
            return messages
        messages.extend(openai_message(item.message) for item in reply.messages)
        if not reply.next_page_token:
            return messages
        request.page_token = reply.next_page_token


def _delete(memori: Memori) -> Steps[int]:
    session_id, attribution = memori.call_identity()
    request = session_pb2.DeleteRequest(session_id=session_id, attribution=attribution)
    try:
        reply = yield ("Delete", request, session_id)
        deleted = int(reply.deleted_message_count)
    except SessionNotFound:
        deleted = 0
    memori.reset_session()
    return deleted


def _append(
    memori: Memori,
    messages: Iterable[Any],
    session_id: str | None,
    request_id: str | None,
    create_time: datetime | None,
) -> Steps[list[int]]:
    current, attribution = memori.call_identity()
    target = current if session_id is None else identifiers.session_id(session_id)
    request = session_pb2.AppendMessagesRequest(
        attribution=attribution, session_id=target, messages=chat_messages(messages)
    )
    if request_id is not None:
        request.request_id = request_id
    if create_time is not None:
        stamp = timestamp_pb2.Timestamp()
        # A naive datetime is taken as UTC, as the service's times are.
        stamp.FromDatetime(create_time if create_time.tzinfo else create_time.replace(tzinfo=UTC))
        request.create_time.CopyFrom(stamp)
    reply = yield ("AppendMessages", request, target)
    return list(reply.sequences)


def _session_error(rpc_error: grpc.RpcError, session_id: str) -> Exception:
    status = read_status(rpc_error)
    kind: type[SessionError] | None = None
    if status.reason == "SESSION_ATTRIBUTION_MISMATCH":
        kind = SessionAttributionMismatch
    elif status.code == grpc.StatusCode.NOT_FOUND:
        kind = SessionNotFound
    if kind is not None:
        return kind(status.message, session_id=session_id, reason=status.reason)
    return ServiceError(
        f"{status.code.name}: {status.message}", code=status.code.name, reason=status.reason
    )


def _whole_numbers(value: Any) -> Any:
    """Struct keeps every number as a double; give whole ones back as ints, as they were sent."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def openai_message(message: common_pb2.ChatMessage) -> dict[str, Any]:
    result: dict[str, Any] = {"role": ROLE_NAMES.get(message.role, "user")}
    if message.HasField("content"):
        result["content"] = message.content
    elif message.content_parts:
        result["content"] = [
            _whole_numbers(json_format.MessageToDict(part)) for part in message.content_parts
        ]
    if message.name:
        result["name"] = message.name
    if message.tool_calls:
        result["tool_calls"] = [
            {
                "id": call.id,
                "type": call.type or "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        result["tool_call_id"] = message.tool_call_id
    return result
