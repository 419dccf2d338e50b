"""`chat.completions.create` / `parse` of a registered openai client, through ChatService."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar

import grpc
import httpx2
import openai
from memori_proto.v1 import chat_pb2, common_pb2
from openai.lib._parsing._completions import (
    parse_chat_completion,
    type_to_response_format_param,
    validate_input_tools,
)
from openai.types.chat import ChatCompletion, ParsedChatCompletion

from memori_client import responses, retries
from memori_client.call_plan import CallPlan, plan_call
from memori_client.connection import Connection
from memori_client.openai_errors import chat_error
from memori_client.status import CallStatus, read_status
from memori_client.streams import AsyncChunkStream, ChunkStream, cancel

_T = TypeVar("_T")


class Binding(Protocol):
    """What a route needs of its `Memori`: where to call, for whom, how long."""

    connection: Connection
    timeout: float | None
    recall_options: chat_pb2.RecallOptions | None

    def call_identity(self) -> tuple[str, common_pb2.Attribution]: ...


class _Route:
    def __init__(self, binding: Binding, client: openai.OpenAI | openai.AsyncOpenAI) -> None:
        self.binding = binding
        self.client = client

    def _plan(self, arguments: dict[str, Any]) -> CallPlan:
        session_id, attribution = self.binding.call_identity()
        return plan_call(
            arguments,
            session_id=session_id,
            attribution=attribution,
            default_timeout=self.binding.timeout,
            client=self.client,
            recall=self.binding.recall_options,
        )

    def _error(self, plan: CallPlan, method: str, status: CallStatus) -> Exception:
        request = httpx2.Request("POST", _url(self.binding.connection.target, method))
        return chat_error(status, self.client, request, plan.session_id)

    def _stream_error(self, plan: CallPlan) -> Callable[[grpc.RpcError], Exception]:
        """How a stream reports a failure while it is being read (no retry then)."""
        return lambda rpc_error: self._error(plan, "StreamComplete", read_status(rpc_error))

    def _failed(
        self, plan: CallPlan, method: str, rpc_error: grpc.RpcError, retries_done: int
    ) -> tuple[Exception, float | None]:
        """The exception for a failed attempt, and the wait before retrying (None: raise)."""
        status = read_status(rpc_error)
        error = self._error(plan, method, status)
        if retries_done >= plan.max_retries or not retries.worth_retrying(error):
            return error, None
        return error, retries.delay(retries_done, status.retry_after)

    def _parse_arguments(self, arguments: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        response_format = arguments.pop("response_format", openai.NOT_GIVEN)
        tools = validate_input_tools(arguments.get("tools", openai.omit))
        if arguments.get("stream"):
            raise TypeError("parse() does not stream; use chat.completions.stream(...)")
        arguments["response_format"] = type_to_response_format_param(response_format)
        return response_format, tools, arguments


def _url(target: str, method: str) -> str:
    try:
        return str(httpx2.URL(f"http://{target}/memori.v1.ChatService/{method}"))
    except (httpx2.InvalidURL, ValueError):  # unix: or dns:/// targets are not URL hosts
        return f"http://memori/memori.v1.ChatService/{method}"


class SyncRoute(_Route):
    """Bound into an `openai.OpenAI` client's `chat.completions` by `llm.register`."""

    def create(self, **arguments: Any) -> ChatCompletion | ChunkStream:
        plan = self._plan(arguments)
        stub = self.binding.connection.chat()
        metadata = self.binding.connection.metadata
        if plan.stream:

            def open_stream() -> ChunkStream:
                call = stub.StreamComplete(
                    plan.streaming(), timeout=plan.timeout, metadata=metadata
                )
                items = iter(call)
                try:
                    first = _until_first_chunk(items)
                except BaseException:
                    cancel(call)
                    raise
                return ChunkStream(call, items, first, self._stream_error(plan))

            return self._retrying(plan, "StreamComplete", open_stream)

        def complete() -> ChatCompletion:
            reply: chat_pb2.CompleteResponse = stub.Complete(
                plan.unary(), timeout=plan.timeout, metadata=metadata
            )
            return responses.completion(reply.completion_json)

        return self._retrying(plan, "Complete", complete)

    def parse(self, **arguments: Any) -> ParsedChatCompletion[Any]:
        response_format, tools, arguments = self._parse_arguments(arguments)
        completion = self.create(**arguments)
        assert isinstance(completion, ChatCompletion)
        return parse_chat_completion(
            response_format=response_format, input_tools=tools, chat_completion=completion
        )

    def _retrying(self, plan: CallPlan, method: str, attempt: Callable[[], _T]) -> _T:
        for done in itertools.count():
            try:
                return attempt()
            except grpc.RpcError as rpc_error:
                error, wait = self._failed(plan, method, rpc_error, done)
                if wait is None:
                    raise error from rpc_error
                time.sleep(wait)
        raise AssertionError("unreachable")


class AsyncRoute(_Route):
    """Bound into an `openai.AsyncOpenAI` client's `chat.completions` by `llm.register`."""

    async def create(self, **arguments: Any) -> ChatCompletion | AsyncChunkStream:
        plan = self._plan(arguments)
        stub = self.binding.connection.aio_chat()
        metadata = self.binding.connection.metadata
        if plan.stream:

            async def open_stream() -> AsyncChunkStream:
                call = stub.StreamComplete(
                    plan.streaming(), timeout=plan.timeout, metadata=metadata
                )
                items = aiter(call)
                try:
                    first = await _until_first_chunk_async(items)
                except BaseException:
                    call.cancel()
                    raise
                return AsyncChunkStream(call, items, first, self._stream_error(plan))

            return await self._retrying(plan, "StreamComplete", open_stream)

        async def complete() -> ChatCompletion:
            reply: chat_pb2.CompleteResponse = await stub.Complete(
                plan.unary(), timeout=plan.timeout, metadata=metadata
            )
            return responses.completion(reply.completion_json)

        return await self._retrying(plan, "Complete", complete)

    async def parse(self, **arguments: Any) -> ParsedChatCompletion[Any]:
        response_format, tools, arguments = self._parse_arguments(arguments)
        completion = await self.create(**arguments)
        assert isinstance(completion, ChatCompletion)
        return parse_chat_completion(
            response_format=response_format, input_tools=tools, chat_completion=completion
        )

    async def _retrying(
        self, plan: CallPlan, method: str, attempt: Callable[[], Awaitable[_T]]
    ) -> _T:
        for done in itertools.count():
            try:
                return await attempt()
            except grpc.RpcError as rpc_error:
                error, wait = self._failed(plan, method, rpc_error, done)
                if wait is None:
                    raise error from rpc_error
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")


def _until_first_chunk(
    items: Iterator[chat_pb2.StreamCompleteResponse],
) -> list[chat_pb2.StreamCompleteResponse]:
    """Read past the session message to the first chunk, so that a call the upstream refuses
    fails in `create(...)` (and is retried there), as an HTTP error status would."""
    for item in items:
        if item.chunk_json:
            return [item]
    return []


async def _until_first_chunk_async(
    items: AsyncIterator[chat_pb2.StreamCompleteResponse],
) -> list[chat_pb2.StreamCompleteResponse]:
    async for item in items:
        if item.chunk_json:
            return [item]
    return []
