"""The gRPC channels of one `Memori` object: created on first use, closed with it.

The sync channel serves `OpenAI` clients and the session helpers; `AsyncOpenAI` clients get
a grpc.aio channel of the event loop they run on (a grpc.aio channel is bound to its loop).
A channel the app hands in stays the app's: `close()` leaves it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import TYPE_CHECKING

import grpc
from memori_proto.v1 import chat_pb2_grpc, entity_pb2_grpc, memory_pb2_grpc, session_pb2_grpc

from memori_client.errors import MemoriClosed

if TYPE_CHECKING:
    from memori_proto.v1.chat_pb2_grpc import ChatServiceAsyncStub
    from memori_proto.v1.entity_pb2_grpc import EntityServiceAsyncStub
    from memori_proto.v1.memory_pb2_grpc import MemoryServiceAsyncStub
    from memori_proto.v1.session_pb2_grpc import SessionServiceAsyncStub

DEFAULT_TARGET = "localhost:50051"
_MAX_RECEIVE_BYTES = 64 * 1024 * 1024  # long completions and replayed streams fit
_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),)

Metadata = tuple[tuple[str, str], ...]


class Connection:
    def __init__(
        self,
        target: str | None,
        *,
        api_key: str | None,
        tls: bool | grpc.ChannelCredentials,
        channel: grpc.Channel | None,
        aio_channel: grpc.aio.Channel | None,
    ) -> None:
        self.target = target or os.environ.get("MEMORI_TARGET") or DEFAULT_TARGET
        key = api_key if api_key is not None else os.environ.get("MEMORI_API_KEY")
        self.metadata: Metadata = (("authorization", f"Bearer {key}"),) if key else ()
        self._credentials = (
            tls
            if isinstance(tls, grpc.ChannelCredentials)
            else grpc.ssl_channel_credentials()
            if tls
            else None
        )
        self._lock = threading.Lock()
        self._closed = False
        self._given_channel = channel
        self._channel: grpc.Channel | None = channel
        self._chat: chat_pb2_grpc.ChatServiceStub | None = None
        self._sessions: session_pb2_grpc.SessionServiceStub | None = None
        self._given_aio = aio_channel
        self._aio: dict[asyncio.AbstractEventLoop, grpc.aio.Channel] = {}
        self._aio_chat: dict[asyncio.AbstractEventLoop, ChatServiceAsyncStub] = {}
        self._aio_sessions: dict[asyncio.AbstractEventLoop, SessionServiceAsyncStub] = {}
        self._aio_entities: dict[asyncio.AbstractEventLoop, EntityServiceAsyncStub] = {}
        self._aio_memory: dict[asyncio.AbstractEventLoop, MemoryServiceAsyncStub] = {}

    def chat(self) -> chat_pb2_grpc.ChatServiceStub:
        stub = self._chat
        if stub is None:
            stub = self._chat = chat_pb2_grpc.ChatServiceStub(self._sync_channel())
        return stub

    def sessions(self) -> session_pb2_grpc.SessionServiceStub:
        stub = self._sessions
        if stub is None:
            stub = self._sessions = session_pb2_grpc.SessionServiceStub(self._sync_channel())
        return stub

    def entities(self) -> entity_pb2_grpc.EntityServiceStub:
        return entity_pb2_grpc.EntityServiceStub(self._sync_channel())

    def aio_entities(self) -> EntityServiceAsyncStub:
        loop = asyncio.get_running_loop()
        stub = self._aio_entities.get(loop)
        if stub is None:
            channel = self._aio_channel(loop)
            stub = self._aio_entities[loop] = entity_pb2_grpc.EntityServiceStub(channel)
        return stub

    def memory(self) -> memory_pb2_grpc.MemoryServiceStub:
        return memory_pb2_grpc.MemoryServiceStub(self._sync_channel())

    def aio_memory(self) -> MemoryServiceAsyncStub:
        loop = asyncio.get_running_loop()
        stub = self._aio_memory.get(loop)
        if stub is None:
            channel = self._aio_channel(loop)
            stub = self._aio_memory[loop] = memory_pb2_grpc.MemoryServiceStub(channel)
        return stub

    def aio_chat(self) -> ChatServiceAsyncStub:
        loop = asyncio.get_running_loop()
        stub = self._aio_chat.get(loop)
        if stub is None:
            stub = self._aio_chat[loop] = chat_pb2_grpc.ChatServiceStub(self._aio_channel(loop))
        return stub

    def aio_sessions(self) -> SessionServiceAsyncStub:
        loop = asyncio.get_running_loop()
        stub = self._aio_sessions.get(loop)
        if stub is None:
            channel = self._aio_channel(loop)
            stub = self._aio_sessions[loop] = session_pb2_grpc.SessionServiceStub(channel)
        return stub

    def _aio_channel(self, loop: asyncio.AbstractEventLoop) -> grpc.aio.Channel:
        with self._lock:
            self._check_open()
            return self._given_aio or self._aio.get(loop) or self._open_aio(loop)

    def _sync_channel(self) -> grpc.Channel:
        with self._lock:
            self._check_open()
            if self._channel is None:
                self._channel = (
                    grpc.secure_channel(self.target, self._credentials, _CHANNEL_OPTIONS)
                    if self._credentials is not None
                    else grpc.insecure_channel(self.target, _CHANNEL_OPTIONS)
                )
            return self._channel

    def _open_aio(self, loop: asyncio.AbstractEventLoop) -> grpc.aio.Channel:
        # Channels of loops that have ended are dropped (they cannot be closed any more).
        for old in [old for old in self._aio if old.is_closed()]:
            del self._aio[old]
            self._aio_chat.pop(old, None)
            self._aio_sessions.pop(old, None)
            self._aio_entities.pop(old, None)
            self._aio_memory.pop(old, None)
        channel = (
            grpc.aio.secure_channel(self.target, self._credentials, _CHANNEL_OPTIONS)
            if self._credentials is not None
            else grpc.aio.insecure_channel(self.target, _CHANNEL_OPTIONS)
        )
        self._aio[loop] = channel
        return channel

    def _check_open(self) -> None:
        if self._closed:
            raise MemoriClosed("this Memori object is closed; create a new one")

    def check_open(self) -> None:
        with self._lock:
            self._check_open()

    def close(self) -> None:
        """Close the channels this object opened; aio channels of running loops close there."""
        with self._lock:
            self._closed = True
            channel, self._channel = self._channel, None
            aio, self._aio = self._aio, {}
            self._chat = self._sessions = None
            self._aio_chat, self._aio_sessions, self._aio_entities = {}, {}, {}
            self._aio_memory = {}
        if channel is not None and channel is not self._given_channel:
            channel.close()
        for loop, opened in aio.items():
            _close_aio(loop, opened)

    async def aclose(self) -> None:
        with self._lock:
            current = self._aio.pop(asyncio.get_running_loop(), None)
        if current is not None:
            await current.close(None)
        self.close()


def _close_aio(loop: asyncio.AbstractEventLoop, channel: grpc.aio.Channel) -> None:
    if loop.is_closed():
        return
    if loop.is_running():
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(channel.close(None), loop)
        return
    loop.run_until_complete(channel.close(None))
