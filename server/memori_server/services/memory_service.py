"""memori.v1.MemoryService: search an entity's long-term memory; how far indexing has got."""

from __future__ import annotations

from memori_proto.v1 import memory_pb2, memory_pb2_grpc

from memori_server import validation
from memori_server.errors import MemoryOff
from memori_server.memory.search import (
    MAX_QUERY_CHARS,
    FoundMemory,
    MemorySearch,
    search_bounds,
)
from memori_server.rpc_errors import Context
from memori_server.services.tenancy import calling_tenant
from memori_server.storage.memory_store import MemoryStore
from memori_server.validation import Violations

DEFAULT_PAGE_SIZE = 10


def memory_pb(found: FoundMemory) -> memory_pb2.Memory:
    memory = memory_pb2.Memory(
        session_id=found.session_id,
        sequences=found.sequences,
        text=found.text,
        score=found.score,
        token_count=found.token_count,
    )
    memory.create_time.FromDatetime(found.create_time)
    return memory


class MemoryService(memory_pb2_grpc.MemoryServiceServicer):
    def __init__(self, search: MemorySearch | None, store: MemoryStore | None) -> None:
        """`search` and `store` are None when the server runs without memory."""
        self._search = search
        self._store = store

    async def Search(  # noqa: N802 (gRPC method names)
        self, request: memory_pb2.SearchRequest, rpc: Context
    ) -> memory_pb2.SearchResponse:
        violations = Violations()
        attribution = validation.attribution(
            request.attribution.entity_id,
            request.attribution.process_id,
            "attribution",
            violations,
        )
        if not request.query.strip():
            violations.add("query", "required: what to look for")
        elif len(request.query) > MAX_QUERY_CHARS:
            violations.add("query", f"at most {MAX_QUERY_CHARS} characters")
        if request.exclude_session_id:
            validation.session_id(request.exclude_session_id, "exclude_session_id", violations)
        page_size, token_budget = search_bounds(
            request.page_size,
            request.token_budget,
            default_page_size=DEFAULT_PAGE_SIZE,
            default_budget=0,
            field="",
            violations=violations,
        )
        violations.raise_if_any()
        if self._search is None:
            raise MemoryOff()
        found = await self._search.search(
            calling_tenant(),
            attribution.entity_id,
            attribution.process_id or None,  # empty: every process of the entity
            request.query,
            page_size=page_size,
            token_budget=token_budget,
            exclude_session_id=request.exclude_session_id.lower(),
        )
        return memory_pb2.SearchResponse(memories=[memory_pb(item) for item in found])

    async def GetIndexStatus(  # noqa: N802
        self, request: memory_pb2.GetIndexStatusRequest, rpc: Context
    ) -> memory_pb2.GetIndexStatusResponse:
        if self._store is None:
            raise MemoryOff()
        status = await self._store.status(calling_tenant())
        return memory_pb2.GetIndexStatusResponse(
            pending_message_count=status.pending, indexed_message_count=status.indexed
        )


__all__ = ["MemoryService", "memory_pb"]
