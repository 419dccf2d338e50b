"""Assembles the gRPC server: storage, services, health, reflection; starts and stops it."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import signal
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]  # grpc-stubs lacks aio
from memori_proto.v1 import chat_pb2, entity_pb2, memory_pb2, session_pb2

from memori_server.auth import (
    ApiKeyInterceptor,
    ApiKeys,
    keys_configured,
    load_api_keys,
    unauthenticated_exposure,
)
from memori_server.chat.upstream import Upstream
from memori_server.config import Settings, parse_listen
from memori_server.foreground import Foreground
from memori_server.health import DatabaseHealth
from memori_server.housekeeping import Housekeeping
from memori_server.memory.runtime import MemoryRuntime
from memori_server.metrics import MetricsEndpoint, MetricsInterceptor
from memori_server.reflection import enable_reflection
from memori_server.registration import add_service
from memori_server.services.append import Appender
from memori_server.services.chat_service import ChatService
from memori_server.services.claim_releases import ClaimReleases
from memori_server.services.entity_service import EntityService
from memori_server.services.memory_service import MemoryService
from memori_server.services.session_service import SessionService
from memori_server.storage.database import Database
from memori_server.storage.engine import mask
from memori_server.storage.entity_store import EntityStore
from memori_server.storage.history_cache import HistoryCache
from memori_server.storage.idempotency import IdempotencyStore
from memori_server.storage.migrate import migrate, pending_revision
from memori_server.storage.retention import RetentionStore
from memori_server.storage.session_store import SessionStore, utc_now
from memori_server.storage.statistics import analyze_never_analyzed
from memori_server.storage.turn_store import TurnStore
from memori_server.transport import BindError, bind

log = logging.getLogger(__name__)
RELEASE_GRACE_SECONDS = 5.0  # for the claim releases of calls cancelled at shutdown
# Allocations between young collections (CPython's default: 700). Each young pass walks the
# state of every call in flight; under 32 concurrent completions, 2,000 took young passes
# from 18-19 to 6-7 µs of CPU per completion, with pauses of 0.7-0.9 ms (median) to 1.5 ms.
YOUNG_COLLECTION_THRESHOLD = 2000
SERVICES = (
    session_pb2.DESCRIPTOR.services_by_name["SessionService"],
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"],
    entity_pb2.DESCRIPTOR.services_by_name["EntityService"],
    memory_pb2.DESCRIPTOR.services_by_name["MemoryService"],
)
SERVICE_NAMES = (
    *(service.full_name for service in SERVICES),
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
)


class StartupError(Exception):
    """The server cannot start (bad address, database unreachable, ...); says what to fix."""


class UnsafeConfiguration(StartupError):
    """The configuration would expose the service; refused before anything is opened."""


def checked_api_keys(settings: Settings) -> ApiKeys:
    """The configured keys; UnsafeConfiguration when they are malformed, too short, or
    missing where the server would be reachable beyond loopback."""
    try:
        keys = load_api_keys(settings)
    except ValueError as error:
        raise UnsafeConfiguration(f"cannot load API keys: {error}") from error
    problem = unauthenticated_exposure(settings, keys)
    if problem is not None:
        raise UnsafeConfiguration(problem)
    return keys


async def open_database(
    database_url: str,
    pool_size: int,
    *,
    migrate_schema: bool,
    fast_paths: bool = True,
    sqlite_synchronous: str = "full",
) -> Database:
    """Connect, then migrate (or warn when the schema lags) and give PostgreSQL statistics of
    tables that have none; StartupError says what failed."""
    try:
        database = Database(
            database_url, pool_size, fast_paths=fast_paths, sqlite_synchronous=sqlite_synchronous
        )
    except ValueError as error:
        raise StartupError(str(error)) from error
    try:
        if migrate_schema:
            revision = await migrate(database)
            log.info("database schema up to date", extra={"revision": revision})
        elif (pending := await pending_revision(database)) is not None:
            log.warning(
                "database schema is behind; run `memori-server migrate`", extra={"head": pending}
            )
    except Exception as error:
        await database.close()
        raise StartupError(
            f"cannot use database {mask(database_url)}: {type(error).__name__}: {error}"
        ) from error
    try:
        analyzed = await analyze_never_analyzed(database)
    except Exception as error:  # the planner's statistics help; serving does not need them
        log.warning("cannot analyze tables", extra={"error": f"{type(error).__name__}: {error}"})
    else:
        if analyzed.tables:
            log.info("analyzed tables without statistics", extra={"tables": analyzed.tables})
        if analyzed.skipped:
            log.warning(
                "tables without statistics left to autovacuum (lock held or out of time)",
                extra={"tables": analyzed.skipped},
            )
    return database


class MemoriServer:
    """One server process. Stateless apart from the database, so many can share one."""

    def __init__(
        self,
        settings: Settings,
        extra_handlers: Sequence[grpc.GenericRpcHandler[Any, Any]] = (),
    ) -> None:
        """`extra_handlers` are served next to the memori services (benchmarks use it)."""
        self.settings = settings
        self._extra_handlers = tuple(extra_handlers)
        self.port = 0
        self._database: Database | None = None
        self._history_cache: HistoryCache | None = None
        self.store: SessionStore | None = None
        self._server: grpc.aio.Server | None = None
        self._health: health_aio.HealthServicer | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._watcher: DatabaseHealth | None = None
        self._metrics: MetricsEndpoint | None = None
        self._upstream: Upstream | None = None
        self._chat: ChatService | None = None
        self._housekeeping: Housekeeping | None = None
        self._housekeeping_task: asyncio.Task[None] | None = None
        self._auth: ApiKeyInterceptor | None = None
        self.memory: MemoryRuntime | None = None
        self.foreground = Foreground()
        """The completions being worked on, which background work gives way to."""
        self._releases: ClaimReleases | None = None
        """The request-id releases of failed calls, completions and appends alike."""

    async def _open_storage(self) -> SessionStore:
        settings = self.settings
        self._database = await open_database(
            settings.database_url,
            settings.pool_size,
            migrate_schema=settings.migrate_on_start,
            fast_paths=settings.database_fast_paths,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        # A window of a session past its retention must not outlive it in memory either.
        idle = min(settings.history_cache_idle, settings.session_retention or math.inf)
        self._history_cache = HistoryCache(settings.history_cache_bytes, idle)
        self.store = SessionStore(self._database, cache=self._history_cache)
        return self.store

    async def start(self) -> int:
        """Open storage, bind, start serving; returns the bound port."""
        settings = self.settings
        keys = checked_api_keys(settings)
        store = await self._open_storage()
        interceptors: list[Any] = [MetricsInterceptor()] if settings.metrics_listen else []
        if keys_configured(settings):
            self._auth = ApiKeyInterceptor(keys)
            interceptors.append(self._auth)
        server = grpc.aio.server(
            interceptors=interceptors,
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
            ],
        )
        assert self._database is not None
        self._upstream = Upstream(settings)
        requests = IdempotencyStore(self._database, utc_now)
        self._releases = ClaimReleases(requests)
        turns = TurnStore(self._database, cache=self._history_cache)
        if settings.memory:
            self.memory = await MemoryRuntime.open(self._database, settings, self.foreground)
            turns.on_stored = self.memory.indexer.poke
        self._chat = ChatService(
            turns,
            store,
            requests,
            self._upstream,
            settings,
            recall=self.memory.recall if self.memory else None,
            foreground=self.foreground,
            releases=self._releases,
        )
        servicers = (
            SessionService(
                store,
                settings.session_idle_timeout,
                Appender(turns, store, requests, settings, self._releases),
            ),
            self._chat,
            EntityService(
                EntityStore(self._database, cache=self._history_cache),
                on_erased=self.memory.search.vectors.forget_entity if self.memory else None,
            ),
            MemoryService(
                self.memory.search if self.memory else None,
                self.memory.store if self.memory else None,
            ),
        )
        for servicer, service in zip(servicers, SERVICES, strict=True):
            add_service(server, servicer, service)
        self._housekeeping = Housekeeping(
            requests,
            RetentionStore(self._database),
            settings.session_retention,
            settings.housekeeping_interval,
            utc_now,
            self._history_cache,
        )
        self._health = health_aio.HealthServicer()
        add_service(server, self._health, health_pb2.DESCRIPTOR.services_by_name["Health"])
        enable_reflection(server, SERVICE_NAMES)
        if self._extra_handlers:
            server.add_generic_rpc_handlers(self._extra_handlers)
        host, _ = parse_listen(settings.listen)
        try:
            self.port = bind(server, settings)
        except BindError as error:
            raise StartupError(str(error)) from error
        if settings.metrics_listen:
            metrics_host, metrics_port = parse_listen(settings.metrics_listen)
            try:
                self._metrics = MetricsEndpoint(metrics_host, metrics_port)
            except OSError as error:
                raise StartupError(
                    f"cannot serve metrics on {settings.metrics_listen}: {error}"
                ) from error
            log.info(
                "metrics at /metrics", extra={"address": f"{metrics_host}:{self._metrics.port}"}
            )
        self._watcher = watcher = DatabaseHealth(
            self._health, store, SERVICE_NAMES[: len(SERVICES)], settings.health_check_interval
        )
        await watcher.probe()
        await server.start()
        self._server = server
        self._health_task = asyncio.create_task(watcher.run(), name="database-health")
        self._housekeeping_task = asyncio.create_task(self._housekeeping.run(), name="housekeeping")
        if self.memory is not None:
            self.memory.start()
        if not keys and settings.allow_unauthenticated:
            log.warning(
                "serving without API keys (--allow-unauthenticated): anyone who reaches the "
                "port reads every session and uses the upstream key",
                extra={"listen": settings.listen},
            )
        log.info(
            "memori-server listening",
            extra={
                "address": f"{host}:{self.port}",
                "tls": settings.tls_cert_file is not None,
                "api_keys": len(keys.tenants_by_digest),
                "database": mask(settings.database_url),
                "upstream": self._upstream.base_url,
            },
        )
        return self.port

    @property
    def housekeeping(self) -> Housekeeping:
        assert self._housekeeping is not None, "the server has not started"
        return self._housekeeping

    def reload_api_keys(self) -> bool:
        """Re-read --api-keys-file (SIGHUP); a bad or empty file keeps the current keys."""
        if self._auth is None:
            log.warning("SIGHUP ignored: the server was started without API keys")
            return False
        try:
            keys = load_api_keys(self.settings)
        except ValueError as error:
            log.error("API keys not reloaded, the current ones stay", extra={"error": str(error)})
            return False
        if not keys:
            log.error("API keys not reloaded: the new configuration has none; the current stay")
            return False
        self._auth.replace_keys(keys)
        log.info("API keys reloaded", extra={"api_keys": len(keys.tenants_by_digest)})
        return True

    @property
    def metrics_port(self) -> int | None:
        """The bound port of the /metrics endpoint, when metrics are on."""
        return self._metrics.port if self._metrics is not None else None

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, let in-flight calls finish within `grace` (then cancel the
        rest and free their request ids), and only then release storage."""
        grace = self.settings.shutdown_grace if grace is None else grace
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._housekeeping is not None and self._housekeeping_task is not None:
            self._housekeeping.stop()
            await self._housekeeping_task
        if self._watcher is not None and self._health_task is not None:
            self._watcher.stop()
            await self._health_task

        if self._server is not None:
            await self._server.stop(grace)
        if self._releases is not None:  # of the calls the stop cancelled
            await self._releases.drain(RELEASE_GRACE_SECONDS)
        if self.memory is not None:
            await self.memory.stop()
        if self._upstream is not None:
            await self._upstream.close()
        if self._database is not None:
            await self._database.close()
        if self._metrics is not None:
            self._metrics.close()
        log.info("memori-server stopped")

    async def serve_until_signalled(self) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop gracefully (and on any error)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_api_keys)
        try:
            await self.start()
            # What is alive now lives as long as the process (modules, the SDK, compiled
            # statements, the tokenizer): left out of the cyclic collector, whose full passes
            # otherwise walk all of it, stalling every call in flight (90-100 ms a pass,
            # measured under chat_complete; 8-10 ms frozen).
            gc.freeze()
            gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
            await stop.wait()
            log.info("shutting down", extra={"grace_seconds": self.settings.shutdown_grace})
        finally:
            await self.stop()
