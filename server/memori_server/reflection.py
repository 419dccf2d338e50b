"""Server reflection (v1 and v1alpha) that serves the contract's documentation comments.

Descriptors compiled into `_pb2` modules carry no comments; `memori_proto.descriptor_set`
keeps them, so `grpcurl describe` shows what every RPC and field means.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2
from memori_proto.descriptor_set import FILE_DESCRIPTOR_SET

from memori_server.registration import add_service

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE = reflection.SERVICE_NAME
Response = Any  # reflection_pb2.ServerReflectionResponse; its stubs are untyped


def _documented_files() -> dict[str, bytes]:
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET)
    return {proto.name: proto.SerializeToString() for proto in descriptor_set.file}


class DocumentedReflectionServicer(reflection.aio.ReflectionServicer):  # type: ignore[misc,name-defined]
    def __init__(self, service_names: Iterable[str]) -> None:
        super().__init__(list(service_names))
        self._documented = _documented_files()

    def _with_docs(self, response: Response) -> Response:
        if response.HasField("file_descriptor_response"):
            protos = response.file_descriptor_response.file_descriptor_proto
            for index, raw in enumerate(protos):
                name = descriptor_pb2.FileDescriptorProto.FromString(raw).name
                protos[index] = self._documented.get(name, raw)
        return response

    def _file_by_filename(self, request: object, filename: str) -> Response:
        return self._with_docs(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request: object, symbol: str) -> Response:
        response = super()._file_containing_symbol(request, symbol)
        parent, _, member = symbol.rpartition(".")
        if response.HasField("error_response") and parent:
            # upb's pool does not index methods: `grpcurl describe pkg.Service.Method`
            # would fail, so resolve a method through its service.
            try:
                service = self._pool.FindServiceByName(parent)
            except KeyError:
                return response
            if member in service.methods_by_name:
                response = super()._file_containing_symbol(request, parent)
        return self._with_docs(response)

    def _file_containing_extension(
        self, request: object, containing_type: str, extension_number: int
    ) -> Response:
        return self._with_docs(
            super()._file_containing_extension(request, containing_type, extension_number)
        )


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Register reflection under both names: grpcurl ≥ 1.9 asks v1, older tools v1alpha."""
    servicer = DocumentedReflectionServicer([*service_names, V1_SERVICE, V1ALPHA_SERVICE])
    service = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
    for name in (V1ALPHA_SERVICE, V1_SERVICE):
        add_service(server, servicer, service, name)
