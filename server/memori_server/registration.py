"""Register servicers with request parsing under our control.

The generated `add_*Servicer_to_server` lets grpcio parse requests, and a request that does
not parse (bad bytes, invalid UTF-8 in a string field) then fails as INTERNAL. Parsing here
turns it into INVALID_ARGUMENT, so no client input can produce INTERNAL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from memori_server.errors import Context, InvalidArgument, abort_with

Behavior = Callable[[Message, Context], Awaitable[Message]]


def _parsing(method: MethodDescriptor, behavior: Behavior) -> Behavior:
    request_class = message_factory.GetMessageClass(method.input_type)

    async def handle(raw: Any, context: Context) -> Message:
        try:
            request = request_class.FromString(raw)
        except (DecodeError, ValueError) as error:
            invalid = InvalidArgument(
                [("request", f"not a valid {method.input_type.full_name}: {error}")]
            )
            await abort_with(context, invalid)
            raise  # unreachable: abort raises
        return await behavior(request, context)

    return handle


def add_service(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Expose every unary method of `service` implemented by `servicer` on `server`."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            raise NotImplementedError(f"{method.full_name}: only unary methods are supported")
        response_class = message_factory.GetMessageClass(method.output_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _parsing(method, getattr(servicer, method.name)),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
