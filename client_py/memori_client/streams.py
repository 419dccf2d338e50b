"""`create(stream=True)` results: chunk iterators that behave like the openai SDK's streams.

Iterate them (or `async for`), use them as (async) context managers, and `close()` them to
cancel the call; a cancelled call stores nothing. `response.close()` exists too, because the
SDK's `chat.completions.stream(...)` helper closes the stream that way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Self

import grpc
from memori_proto.v1 import chat_pb2
from openai.types.chat import ChatCompletionChunk

from memori_client import responses

ErrorMapper = Callable[[grpc.RpcError], Exception]


def cancel(call: grpc.RpcContext) -> None:
    call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped


class _SyncCallHandle:
    def __init__(self, stream: ChunkStream) -> None:
        self._stream = stream

    def close(self) -> None:
        self._stream.close()


class ChunkStream:
    """Sync stream of `ChatCompletionChunk`s relayed by StreamComplete."""

    def __init__(
        self,
        call: grpc.CallIterator[chat_pb2.StreamCompleteResponse],
        items: Iterator[chat_pb2.StreamCompleteResponse],
        first: list[chat_pb2.StreamCompleteResponse],
        to_error: ErrorMapper,
    ) -> None:
        self._call = call
        self._items = items
        self._first = first
        self._to_error = to_error
        self.response = _SyncCallHandle(self)
        self._iterator = self._chunks()

    def _chunks(self) -> Iterator[ChatCompletionChunk]:
        for item in self._first:
            yield responses.chunk(item.chunk_json)
        self._first = []
        while True:
            try:
                item = next(self._items)
            except StopIteration:
                return
            except grpc.RpcError as error:
                raise self._to_error(error) from error
            if item.chunk_json:
                yield responses.chunk(item.chunk_json)

    def __next__(self) -> ChatCompletionChunk:
        return next(self._iterator)

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def close(self) -> None:
        """Cancel the call if it is still running; nothing of the turn is stored then."""
        cancel(self._call)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _AsyncCallHandle:
    def __init__(self, stream: AsyncChunkStream) -> None:
        self._stream = stream

    async def aclose(self) -> None:
        await self._stream.close()

    def close(self) -> None:
        self._stream.cancel()


class AsyncChunkStream:
    """Async stream of `ChatCompletionChunk`s relayed by StreamComplete."""

    def __init__(
        self,
        call: grpc.aio.UnaryStreamCall[
            chat_pb2.StreamCompleteRequest, chat_pb2.StreamCompleteResponse
        ],
        items: AsyncIterator[chat_pb2.StreamCompleteResponse],
        first: list[chat_pb2.StreamCompleteResponse],
        to_error: ErrorMapper,
    ) -> None:
        self._call = call
        self._items = items
        self._first = first
        self._to_error = to_error
        self.response = _AsyncCallHandle(self)
        self._iterator = self._chunks()

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        for item in self._first:
            yield responses.chunk(item.chunk_json)
        self._first = []
        while True:
            try:
                item = await anext(self._items)
            except StopAsyncIteration:
                return
            except grpc.RpcError as error:
                raise self._to_error(error) from error
            if item.chunk_json:
                yield responses.chunk(item.chunk_json)

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._iterator.__anext__()

    def __aiter__(self) -> Self:
        return self

    def cancel(self) -> None:
        self._call.cancel()

    async def close(self) -> None:
        """Cancel the call if it is still running; nothing of the turn is stored then."""
        self._call.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
