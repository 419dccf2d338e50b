"""Recall: earlier sessions' passages brought into a completion as one system message.

Opt-in per call or by the server's default. Scoped to the call's attribution (the same end
user talking to the same agent): another agent's conversations with the user stay its own.
The message is built here and never stored: the turn keeps only what the caller sent and
the reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memori_proto.v1 import chat_pb2

from memori_server.domain import Attribution
from memori_server.memory.search import MAX_QUERY_CHARS, FoundMemory, MemorySearch, search_bounds
from memori_server.validation import Violations

DEFAULT_PAGE_SIZE = 5
DEFAULT_TOKEN_BUDGET = 700
HEADER = (
    "Memories from earlier conversations with this user, oldest first, each with its date. "
    "Use them where they help; later ones may supersede earlier ones."
)


@dataclass(frozen=True, slots=True)
class RecallRequest:
    page_size: int
    token_budget: int


def requested(
    options: chat_pb2.RecallOptions, present: bool, default_on: bool, violations: Violations
) -> RecallRequest | None:
    """What a call asks of recall (None: no recall); its options validated."""
    page_size, token_budget = search_bounds(
        options.page_size,
        options.token_budget,
        default_page_size=DEFAULT_PAGE_SIZE,
        default_budget=DEFAULT_TOKEN_BUDGET,
        field="recall.",
        violations=violations,
    )
    enabled = options.enabled if present and options.HasField("enabled") else default_on
    return RecallRequest(page_size, token_budget) if enabled else None


def query_of(messages: Sequence[dict[str, Any]]) -> str:
    """What to recall for: the text of the call's last user message ('' when it has none)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content[-MAX_QUERY_CHARS:]
        if isinstance(content, list):
            texts = [p["text"] for p in content if isinstance(p, dict) and "text" in p]
            return " ".join(str(text) for text in texts)[-MAX_QUERY_CHARS:]
        return ""
    return ""


def recall_message(found: Sequence[FoundMemory]) -> dict[str, Any]:
    """The system message that carries the memories, in date order."""
    blocks = [
        f"[{memory.create_time.date().isoformat()}]\n{memory.text}"
        for memory in sorted(found, key=lambda memory: memory.create_time)
    ]
    return {"role": "system", "content": "\n\n".join([HEADER, *blocks])}


class Recall:
    def __init__(self, search: MemorySearch, default_on: bool) -> None:
        self._search = search
        self.default_on = default_on

    async def memories(
        self,
        tenant_id: str,
        attribution: Attribution,
        session_id: str,
        messages: Sequence[dict[str, Any]],
        request: RecallRequest,
    ) -> list[FoundMemory]:
        """The attribution's passages of its other sessions that match the call."""
        query = query_of(messages)
        if not query.strip():
            return []
        return await self._search.search(
            tenant_id,
            attribution.entity_id,
            attribution.process_id,
            query,
            page_size=request.page_size,
            token_budget=request.token_budget,
            exclude_session_id=session_id,
        )


__all__ = ["Recall", "RecallRequest", "query_of", "recall_message", "requested"]
