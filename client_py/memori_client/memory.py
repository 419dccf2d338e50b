"""Long-term memory: what an end user said in earlier sessions, as the service finds it.

`memori.recall(query)` asks MemoryService.Search (the Memori SDK's `recall`); with
`Memori(recall=True)` every chat call of the registered clients has the service bring the
best matches in as one system message. Both are scoped to the Memori's attribution and need
a server started with `--memory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
from memori_proto.v1 import chat_pb2, memory_pb2

from memori_client.errors import MemoryOff, ServiceError
from memori_client.status import read_status

if TYPE_CHECKING:
    from memori_client.memori import Memori

_DEFAULT_TIMEOUT = 30.0  # without Memori(timeout=...), as the session calls
_INT32_MAX = 2**31 - 1  # the service caps the sizes far lower; this only keeps them encodable


@dataclass(frozen=True, slots=True)
class RecalledMemory:
    """One remembered passage: a user message of an earlier session with the replies that
    followed it (the Memori SDK's recall results have `content` and a date too)."""

    content: str
    """The passage as text, one line per message ("user: ...", "assistant: ...")."""
    score: float
    """Relevance, higher is better; comparable only within one result list."""
    date: datetime
    """When the passage's first message was stored (aware, UTC)."""
    session_id: str
    """The session it comes from."""
    sequences: tuple[int, ...]
    """The sequence numbers of the messages it covers in that session, ascending."""
    token_count: int
    """Its tokens as the service counts them for budgets."""

    @classmethod
    def from_pb(cls, memory: memory_pb2.Memory) -> RecalledMemory:
        return cls(
            content=memory.text,
            score=memory.score,
            date=memory.create_time.ToDatetime(tzinfo=UTC),
            session_id=memory.session_id,
            sequences=tuple(memory.sequences),
            token_count=memory.token_count,
        )


def _positive(value: int | None, name: str) -> int:
    """A count the caller gave (0 for None: the service's default)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (or None for the service's default)")
    return min(value, _INT32_MAX)


def recall_options(
    enabled: bool | None, limit: int | None, token_budget: int | None
) -> chat_pb2.RecallOptions | None:
    """What `Memori(recall=..., recall_limit=..., recall_token_budget=...)` sends with each
    chat call; None (the server's `--recall-default` decides) when nothing was set."""
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"recall must be True, False or None, not {type(enabled).__name__}")
    page_size = _positive(limit, "recall_limit")
    budget = _positive(token_budget, "recall_token_budget")
    if enabled is None and not page_size and not budget:
        return None
    options = chat_pb2.RecallOptions(page_size=page_size, token_budget=budget)
    if enabled is not None:
        options.enabled = enabled
    return options


def _search_request(
    memori: Memori, query: str, limit: int | None, token_budget: int | None
) -> memory_pb2.SearchRequest:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    _, attribution = memori.call_identity()
    return memory_pb2.SearchRequest(
        attribution=attribution,
        query=query,
        page_size=_positive(limit, "limit"),
        token_budget=_positive(token_budget, "token_budget"),
    )


def _error(rpc_error: grpc.RpcError) -> ServiceError:
    status = read_status(rpc_error)
    kind = MemoryOff if status.reason == "MEMORY_OFF" else ServiceError
    return kind(
        f"{status.code.name}: {status.message}", code=status.code.name, reason=status.reason
    )


def _memories(reply: memory_pb2.SearchResponse) -> list[RecalledMemory]:
    return [RecalledMemory.from_pb(memory) for memory in reply.memories]


def recall(
    memori: Memori, query: str, limit: int | None, token_budget: int | None
) -> list[RecalledMemory]:
    request = _search_request(memori, query, limit, token_budget)
    try:
        reply = memori.connection.memory().Search(
            request,
            timeout=memori.timeout or _DEFAULT_TIMEOUT,
            metadata=memori.connection.metadata,
        )
    except grpc.RpcError as rpc_error:
        raise _error(rpc_error) from rpc_error
    return _memories(reply)


async def recall_async(
    memori: Memori, query: str, limit: int | None, token_budget: int | None
) -> list[RecalledMemory]:
    request = _search_request(memori, query, limit, token_budget)
    try:
        reply = await memori.connection.aio_memory().Search(
            request,
            timeout=memori.timeout or _DEFAULT_TIMEOUT,
            metadata=memori.connection.metadata,
        )
    except grpc.RpcError as rpc_error:
        raise _error(rpc_error) from rpc_error
    return _memories(reply)
