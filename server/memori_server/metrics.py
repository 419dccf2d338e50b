"""Prometheus metrics of every RPC (names as in go-grpc-prometheus, so dashboards carry over)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from memori_server.interception import Behavior, CallInterceptor, StreamBehavior

HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
HANDLING = Histogram(
    "grpc_server_handling_seconds",
    "Time from receiving an RPC to sending its last response.",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


# Data lifecycle: what housekeeping and erasures deleted (counted whether or not /metrics is
# served; the endpoint shows them when it is).
SESSIONS_EXPIRED = Counter(
    "memori_sessions_expired_total", "Sessions deleted by --session-retention."
)
MESSAGES_EXPIRED = Counter(
    "memori_messages_expired_total", "Messages deleted with sessions past --session-retention."
)
REQUESTS_PURGED = Counter(
    "memori_request_records_purged_total", "Request-id records deleted after their expiry."
)
ERASURES_FORGOTTEN = Counter(
    "memori_erasure_records_forgotten_total", "Erasure records dropped after a day."
)
ENTITIES_ERASED = Counter(
    "memori_entities_erased_total", "EntityService.Erase calls that deleted something."
)

# The history windows held between calls (--history-cache-bytes).
HISTORY_CACHE_BYTES = Gauge(
    "memori_history_cache_bytes", "Approximate memory of the history windows held."
)
HISTORY_CACHE_SESSIONS = Gauge("memori_history_cache_sessions", "Sessions with a window held.")
HISTORY_CACHE_LOOKUPS = Counter(
    "memori_history_cache_lookups_total",
    "Chat calls by what they found held: hit (used, maybe extended by the rows after it), "
    "stale (the session had changed: read again) or miss.",
    ["result"],
)

# Long-term memory (--memory).
MEMORY_INDEXED_MESSAGES = Counter(
    "memori_memory_indexed_messages_total", "Stored messages the background indexer covered."
)
MEMORY_INDEXED_PASSAGES = Counter(
    "memori_memory_indexed_passages_total", "Passages embedded and stored by the indexer."
)
MEMORY_INDEX_RUNS_STOPPED = Counter(
    "memori_memory_index_runs_stopped_total",
    "Model runs of the indexer stopped midway to give way to a completion (and run again).",
)
MEMORY_INDEX_SECONDS = Histogram(
    "memori_memory_index_batch_seconds",
    "Time to build and embed one session's batch of passages.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MEMORY_SEARCH_SECONDS = Histogram(
    "memori_memory_search_seconds",
    "Time of one memory search (MemoryService.Search or a completion's recall).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1),
)
MEMORY_VECTOR_CACHE_BYTES = Gauge(
    "memori_memory_vector_cache_bytes", "Memory of the entities' vectors held between searches."
)


def _status_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    code = context.code()  # set by abort()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


@contextmanager
def _observed(labels: tuple[str, str, str], context: Any) -> Iterator[None]:
    """Count and time one call by the status it ends with."""
    started = time.perf_counter()
    code = "OK"
    try:
        yield
    except grpc.aio.AbortError:
        code = _status_of(context)
        raise
    except (asyncio.CancelledError, GeneratorExit):
        code = "CANCELLED"
        raise
    except Exception:
        code = "UNKNOWN"
        raise
    finally:
        HANDLED.labels(*labels, code).inc()
        HANDLING.labels(*labels).observe(time.perf_counter() - started)


def _labels(kind: str, method: str) -> tuple[str, str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return kind, service, name


class MetricsInterceptor(CallInterceptor):
    """Counts and times RPCs; installed only when metrics are enabled."""

    def applies_to(self, method: str) -> bool:
        return not method.startswith("/grpc.reflection.")  # bidi streams of tools, not calls

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        labels = _labels("unary", method)

        async def observed(request: Any, context: Any) -> Any:
            with _observed(labels, context):
                return await behavior(request, context)

        return observed

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        labels = _labels("server_stream", method)

        async def observed(request: Any, context: Any) -> AsyncIterator[Any]:
            with _observed(labels, context):
                async for response in behavior(request, context):
                    yield response

        return observed


class MetricsEndpoint:
    """The /metrics HTTP endpoint (prometheus_client's own server, in a thread)."""

    def __init__(self, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host)
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
