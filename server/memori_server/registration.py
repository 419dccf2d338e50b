"""Register servicers: request parsing and error mapping under our control, for every method.

The generated `add_*Servicer_to_server` lets grpcio parse requests, and a request that does
not parse (bad bytes, invalid UTF-8 in a string field) then fails as INTERNAL. Parsing here
turns it into INVALID_ARGUMENT, and every domain error a method raises becomes its status
here (`rpc_errors`), once, so handlers neither parse bytes nor build statuses. Every service
the server exposes is registered this way: ours, health and reflection.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from memori_server.errors import InvalidArgument
from memori_server.rpc_errors import Context, abort_for

Behavior = Callable[[Message, Context], Awaitable[Message]]
StreamBehavior = Callable[[Message, Context], AsyncIterator[Message]]
BidiBehavior = Callable[[AsyncIterator[Any], Context], AsyncIterator[Message]]


def _parser(method: MethodDescriptor) -> Callable[[Any], Message]:
    """The method's request parser, its message class looked up once."""
    request_class = message_factory.GetMessageClass(method.input_type)

    def parse(raw: Any) -> Message:
        try:
            request: Message = request_class.FromString(raw)
        except (DecodeError, ValueError) as error:
            problem = f"not a valid {method.input_type.full_name}: {error}"
            raise InvalidArgument([("request", problem)]) from error
        return request

    return parse


def _unary(method: MethodDescriptor, behavior: Behavior) -> Behavior:
    parse = _parser(method)

    async def handle(raw: Any, context: Context) -> Message:
        try:
            return await behavior(parse(raw), context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await abort_for(error, context, method.full_name)
            raise AssertionError("unreachable: abort raises") from error

    return handle


async def _mapped(
    responses: AsyncIterator[Message], context: Context, method: MethodDescriptor
) -> AsyncIterator[Message]:
    """A streaming method's responses; what it raises ends the stream with its status."""
    try:
        async for response in responses:
            yield response
    except grpc.aio.AbortError:
        raise
    except Exception as error:
        await abort_for(error, context, method.full_name)


def _server_stream(method: MethodDescriptor, behavior: StreamBehavior) -> StreamBehavior:
    parse = _parser(method)

    # grpc.aio tells streaming handlers by their kind: each must be an async generator.
    async def handle(raw: Any, context: Context) -> AsyncIterator[Message]:
        async def responses() -> AsyncIterator[Message]:
            async for response in behavior(parse(raw), context):
                yield response

        async for response in _mapped(responses(), context, method):
            yield response

    return handle


def _bidi_stream(method: MethodDescriptor, behavior: BidiBehavior) -> BidiBehavior:
    parse = _parser(method)

    async def handle(raw_requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Message]:
        async def requests() -> AsyncIterator[Message]:
            async for raw in raw_requests:
                yield parse(raw)

        async for response in _mapped(behavior(requests(), context), context, method):
            yield response

    return handle


def add_service(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    name: str | None = None,
) -> None:
    """Expose the methods of `service` that `servicer` implements (under `name`, if given:
    reflection's v1 and v1alpha are one servicer under two names)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        serializer = message_factory.GetMessageClass(method.output_type).SerializeToString
        implementation: Any = getattr(servicer, method.name, None)
        if not (
            inspect.iscoroutinefunction(implementation)
            or inspect.isasyncgenfunction(implementation)
        ):
            continue  # not implemented (a generated base's stub): gRPC answers UNIMPLEMENTED
        if method.client_streaming:
            if not method.server_streaming:
                raise NotImplementedError(f"{method.full_name}: client streaming only")
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                _bidi_stream(method, implementation), response_serializer=serializer
            )
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _server_stream(method, implementation), response_serializer=serializer
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(method, implementation), response_serializer=serializer
            )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(name or service.full_name, handlers),)
    )
