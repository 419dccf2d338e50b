"""grpc.health.v1 status that follows the database: NOT_SERVING while it is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]  # grpc-stubs lacks aio

from memori_server.errors import StorageUnavailable
from memori_server.storage.session_store import SessionStore

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseHealth:
    """Probes the database every `interval` seconds and publishes the result."""

    def __init__(
        self,
        servicer: health_aio.HealthServicer,
        store: SessionStore,
        services: Sequence[str],
        interval: float,
    ) -> None:
        self._servicer = servicer
        self._store = store
        self._services = ["", *services]  # "" is the whole server
        self._interval = interval
        self._healthy: bool | None = None
        self._stopped = asyncio.Event()

    async def probe(self) -> bool:
        try:
            async with asyncio.timeout(self._interval):
                await self._store.ping()
            healthy = True
        except (StorageUnavailable, TimeoutError) as error:
            healthy = False
            reason = str(error) or type(error).__name__
        if healthy != self._healthy:
            if healthy:
                log.info("database reachable: serving")
            else:
                log.warning("database unreachable: not serving", extra={"error": reason})
            for service in self._services:
                await self._servicer.set(service, SERVING if healthy else NOT_SERVING)
            self._healthy = healthy
        return healthy

    async def run(self) -> None:
        """Probe until `stop()`; ends on its own, so shutdown never hinges on cancellation."""
        while not self._stopped.is_set():
            await self.probe()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()
