"""The one mapping from domain errors to gRPC statuses with rich details (google.rpc).

`registration` applies it to every method it registers and `auth` to its refusals; nothing
else builds a status. An error that is not a ServiceError is a bug: logged with its
traceback, answered INTERNAL with no detail.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc_status import rpc_status

from memori_server.errors import ServiceError, StorageUnavailable

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


async def abort_with(context: Context, error: ServiceError) -> None:
    """Abort the call with `error`'s status; its details travel as grpc-status-details-bin."""
    status = rpc_status.to_status(error.to_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


async def abort_for(error: Exception, context: Context, rpc: str) -> None:
    """Abort the call with the status `error` maps to; always raises."""
    if isinstance(error, ServiceError):
        if isinstance(error, StorageUnavailable):
            log.warning("database unavailable", extra={"rpc": rpc, "error": error.message})
        await abort_with(context, error)
    log.error("unexpected error", extra={"rpc": rpc}, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal server error; see server log")
