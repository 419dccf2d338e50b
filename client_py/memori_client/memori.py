"""`Memori`: the Memori SDK's chaining API, with the memory kept by memori-grpc.

One object holds one conversation at a time (attribution + session id); every call of a
registered client sends both. Use separate Memori objects for conversations that run at
the same time, e.g. one per request or per user.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import grpc
from memori_proto.v1 import chat_pb2, common_pb2

from memori_client import identifiers
from memori_client.connection import Connection
from memori_client.entities import (
    AsyncEntities,
    Erased,
    ExportedSession,
    erase_entity,
    export_entity,
)
from memori_client.errors import AttributionRequired
from memori_client.llm import LLM
from memori_client.memory import RecalledMemory, recall_options
from memori_client.memory import recall as recall_memories
from memori_client.session import SessionManager


class Memori:
    """Conversation memory for openai clients, kept by a memori-grpc service.

    No network call happens here: `session.id` is a fresh UUID v4 at once, and the channel
    opens on the first call.

    target: "host:port" of the service; default `MEMORI_TARGET`, else localhost:50051.
    api_key: sent as `authorization: Bearer ...`; default `MEMORI_API_KEY`.
    tls: True for TLS with the system's roots, or grpc.ssl_channel_credentials(...).
    timeout: default deadline of each call in seconds (a create's own `timeout=` wins;
        without either, the openai client's timeout applies).
    channel / aio_channel: ready channels to use instead (they stay open on close()).
    recall: long-term memory in every chat call of the registered clients: True brings the
        end user's best-matching earlier passages in as one system message, False never;
        None (default) leaves it to the server's `--recall-default`. Needs `--memory`.
    recall_limit / recall_token_budget: at most this many memories / tokens of them per
        call (None: the server's defaults, 5 memories within 700 tokens).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        tls: bool | grpc.ChannelCredentials = False,
        timeout: float | None = None,
        channel: grpc.Channel | None = None,
        aio_channel: grpc.aio.Channel | None = None,
        recall: bool | None = None,
        recall_limit: int | None = None,
        recall_token_budget: int | None = None,
    ) -> None:
        self.recall_options: chat_pb2.RecallOptions | None = recall_options(
            recall, recall_limit, recall_token_budget
        )
        """Sent with each chat call; None: the server's `--recall-default` decides."""
        self.connection = Connection(
            target, api_key=api_key, tls=tls, channel=channel, aio_channel=aio_channel
        )
        self.timeout = timeout
        self._lock = threading.Lock()
        self._session_id = str(uuid.uuid4())
        self._attribution: common_pb2.Attribution | None = None
        self.session = SessionManager(self)
        self.llm = LLM(self)
        self.aio = AsyncEntities(self)
        """The entity and memory calls for async code: `await memori.aio.recall(...)`."""

    def attribution(self, entity_id: str, process_id: str | None = None) -> Self:
        """Who the conversation belongs to: the end user (entity) and the agent (process).

        Switching to another attribution starts a new session, since a session belongs to the
        attribution that created it: nothing is ever written into the old one.
        """
        entity = identifiers.attribution_id(entity_id, "entity_id", required=True)
        process = identifiers.attribution_id(process_id, "process_id", required=False)
        new = common_pb2.Attribution(entity_id=entity, process_id=process)
        with self._lock:
            if self._attribution is not None and self._attribution != new:
                self._session_id = str(uuid.uuid4())
            self._attribution = new
        return self

    def reset_session(self) -> Self:
        """Start a new conversation (a fresh session id); nothing of the old one is sent."""
        with self._lock:
            self._session_id = str(uuid.uuid4())
        return self

    new_session = reset_session  # the Memori SDK's name

    def set_session(self, session_id: str) -> Self:
        """Continue the session with this UUID v4 (created on first use if unknown)."""
        checked = identifiers.session_id(session_id)
        with self._lock:
            self._session_id = checked
        return self

    def append_messages(
        self,
        messages: Iterable[Any],
        *,
        session_id: str | None = None,
        request_id: str | None = None,
        create_time: datetime | None = None,
    ) -> list[int]:
        """Store messages without a completion: an import from another system, a turn the
        app ran elsewhere. They go to the session the next call goes to (`session.id`), or
        to `session_id` (created when unknown), in one transaction; system and developer
        messages are stored too. Returns each message's sequence number, in order.

        messages: OpenAI-shaped message dicts, as `create(messages=...)` takes them.
        request_id: makes a retry safe: the same id and messages store nothing again.
        create_time: when the messages were written (default now; not in the future).
        Async code: `await memori.session.aio.append_messages(...)`.
        """
        return self.session.append_messages(
            messages, session_id=session_id, request_id=request_id, create_time=create_time
        )

    def recall(
        self, query: str, limit: int | None = None, *, token_budget: int | None = None
    ) -> list[RecalledMemory]:
        """Search the end user's long-term memory (the Memori SDK's `recall`): the passages
        of its sessions that best match `query`, best first, with their dates and sessions.

        Scoped to this Memori's attribution: the entity's sessions with this process (agent),
        or with every process when the attribution has none. The current session is searched
        too. limit: at most this many (None: the service's default, 10; at most 100).
        token_budget: at most this many tokens in all. Raises MemoryOff when the server runs
        without `--memory`. Async code: `await memori.aio.recall(...)`.
        """
        return recall_memories(self, query, limit, token_budget)

    def erase_entity(self, entity_id: str) -> Erased:
        """Delete everything the service holds of this end user, under every process (agent),
        within this API key's tenant; returns what was deleted. A second call deletes 0."""
        return erase_entity(self, entity_id)

    def export_entity(self, entity_id: str) -> Iterator[ExportedSession]:
        """Every session of this end user (under every process) with its messages, oldest
        session first; sessions arrive one by one as the service streams them."""
        return export_entity(self, entity_id)

    def call_identity(
        self, *, require_attribution: bool = True
    ) -> tuple[str, common_pb2.Attribution]:
        """(session id, attribution) for one call, read together."""
        with self._lock:
            session_id, attribution = self._session_id, self._attribution
        if attribution is None:
            if require_attribution:
                raise AttributionRequired(
                    "call memori.attribution(entity_id, process_id) first: the service keeps "
                    "each session for one end user (entity) and agent (process)"
                )
            attribution = common_pb2.Attribution()
        return session_id, attribution

    def close(self) -> None:
        """Unregister the openai clients (they act as plain clients again) and close channels."""
        self.llm.unregister_all()
        self.connection.close()

    async def aclose(self) -> None:
        self.llm.unregister_all()
        await self.connection.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        who = self._attribution
        owner = f"{who.entity_id!r}/{who.process_id!r}" if who is not None else "no attribution"
        return f"Memori(target={self.connection.target!r}, {owner}, session={self._session_id})"
