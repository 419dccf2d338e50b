"""Everything the service holds of one end user (entity): erase it, or export it.

The calls act within the tenant of this Memori's API key and across every process (agent)
of the entity: the right to be forgotten, and the right of access (or moving one's data).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from memori_proto.v1 import entity_pb2

from memori_client import identifiers
from memori_client.errors import ServiceError
from memori_client.memory import RecalledMemory, recall_async
from memori_client.session import SessionInfo, openai_message
from memori_client.status import read_status

if TYPE_CHECKING:
    from memori_client.memori import Memori

_ERASE_TIMEOUT = 300.0  # an entity with years of history is many rows to delete


@dataclass(frozen=True, slots=True)
class Erased:
    """What an erasure deleted."""

    sessions: int
    messages: int
    requests: int
    memories: int = 0
    """Long-term memory passages (0 when the server runs without --memory)."""


@dataclass(slots=True)
class ExportedSession:
    """One session of the entity with every stored message, oldest first, in OpenAI's shape."""

    session: SessionInfo
    messages: list[dict[str, Any]] = field(default_factory=list)


def _request(entity_id: str) -> tuple[entity_pb2.EraseRequest, entity_pb2.ExportRequest]:
    checked = identifiers.attribution_id(entity_id, "entity_id", required=True)
    return entity_pb2.EraseRequest(entity_id=checked), entity_pb2.ExportRequest(entity_id=checked)


def _error(rpc_error: grpc.RpcError) -> ServiceError:
    status = read_status(rpc_error)
    error = ServiceError(
        f"{status.code.name}: {status.message}", code=status.code.name, reason=status.reason
    )
    error.__cause__ = rpc_error
    return error


def _erased(reply: entity_pb2.EraseResponse) -> Erased:
    return Erased(
        reply.deleted_session_count,
        reply.deleted_message_count,
        reply.deleted_request_count,
        reply.deleted_memory_count,
    )


class _Sessions:
    """Folds the export's pages (a session, then runs of its messages) into sessions."""

    def __init__(self) -> None:
        self.current: ExportedSession | None = None

    def add(self, page: entity_pb2.ExportResponse) -> ExportedSession | None:
        """The session that is complete now that `page` came, if one is."""
        done = None
        if self.current is None or self.current.session.id != page.session.id:
            done, self.current = self.current, ExportedSession(SessionInfo.from_pb(page.session))
        self.current.messages.extend(openai_message(item.message) for item in page.messages)
        return done


def erase_entity(memori: Memori, entity_id: str) -> Erased:
    erase, _ = _request(entity_id)
    stub = memori.connection.entities()
    try:
        reply = stub.Erase(
            erase, timeout=memori.timeout or _ERASE_TIMEOUT, metadata=memori.connection.metadata
        )
    except grpc.RpcError as rpc_error:
        raise _error(rpc_error) from None
    return _erased(reply)


def export_entity(memori: Memori, entity_id: str) -> Iterator[ExportedSession]:
    _, export = _request(entity_id)
    pages = memori.connection.entities().Export(
        export, timeout=memori.timeout, metadata=memori.connection.metadata
    )
    sessions = _Sessions()
    try:
        for page in pages:
            if (done := sessions.add(page)) is not None:
                yield done
    except grpc.RpcError as rpc_error:
        raise _error(rpc_error) from None
    if sessions.current is not None:
        yield sessions.current


class AsyncEntities:
    """`memori.aio`: the entity and memory calls for event loops."""

    def __init__(self, memori: Memori) -> None:
        self._memori = memori

    async def recall(
        self, query: str, limit: int | None = None, *, token_budget: int | None = None
    ) -> list[RecalledMemory]:
        """`Memori.recall` over the event loop's channel."""
        return await recall_async(self._memori, query, limit, token_budget)

    async def erase_entity(self, entity_id: str) -> Erased:
        erase, _ = _request(entity_id)
        memori = self._memori
        try:
            reply = await memori.connection.aio_entities().Erase(
                erase, timeout=memori.timeout or _ERASE_TIMEOUT, metadata=memori.connection.metadata
            )
        except grpc.RpcError as rpc_error:
            raise _error(rpc_error) from None
        return _erased(reply)

    async def export_entity(self, entity_id: str) -> AsyncIterator[ExportedSession]:
        _, export = _request(entity_id)
        memori = self._memori
        call = memori.connection.aio_entities().Export(
            export, timeout=memori.timeout, metadata=memori.connection.metadata
        )
        sessions = _Sessions()
        try:
            async for page in call:
                if (done := sessions.add(page)) is not None:
                    yield done
        except grpc.RpcError as rpc_error:
            raise _error(rpc_error) from None
        if sessions.current is not None:
            yield sessions.current
