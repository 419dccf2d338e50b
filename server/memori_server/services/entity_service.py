"""memori.v1.EntityService: erase or export everything of one entity in the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from memori_proto.v1 import entity_pb2, entity_pb2_grpc

from memori_server import validation
from memori_server.metrics import ENTITIES_ERASED
from memori_server.rpc_errors import Context
from memori_server.services.convert import message_pages, session_pb
from memori_server.services.tenancy import calling_tenant
from memori_server.storage.entity_store import EntityStore
from memori_server.validation import Violations


def _entity(request: entity_pb2.EraseRequest | entity_pb2.ExportRequest) -> str:
    violations = Violations()
    entity_id = validation.entity_id(request.entity_id, "entity_id", violations)
    violations.raise_if_any()
    return entity_id


class EntityService(entity_pb2_grpc.EntityServiceServicer):
    def __init__(
        self, store: EntityStore, on_erased: Callable[[str, str], None] | None = None
    ) -> None:
        """`on_erased(tenant_id, entity_id)` lets go of what this process holds of an
        erased entity beyond the history windows (long-term memory's vectors)."""
        self._store = store
        self._on_erased = on_erased

    async def Erase(  # noqa: N802 (gRPC method names)
        self, request: entity_pb2.EraseRequest, rpc: Context
    ) -> entity_pb2.EraseResponse:
        tenant_id, entity_id = calling_tenant(), _entity(request)
        erased = await self._store.erase(tenant_id, entity_id)
        if self._on_erased is not None:
            self._on_erased(tenant_id, entity_id)
        if erased.sessions:
            ENTITIES_ERASED.inc()
        return entity_pb2.EraseResponse(
            deleted_session_count=erased.sessions,
            deleted_message_count=erased.messages,
            deleted_request_count=erased.requests,
            deleted_memory_count=erased.memories,
        )

    async def Export(  # noqa: N802
        self, request: entity_pb2.ExportRequest, rpc: Context
    ) -> AsyncIterator[entity_pb2.ExportResponse]:
        async for session, messages in self._store.export(calling_tenant(), _entity(request)):
            for page in message_pages(messages) or [[]]:
                yield entity_pb2.ExportResponse(session=session_pb(session), messages=page)
