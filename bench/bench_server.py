"""The benchmark's server process: the real `MemoriServer` plus a bare no-op unary RPC.

Both are served by the same `grpc.aio` server in the same process and reached over the same
channel, so the Get/no-op ratio measures what memori adds to a call (validation, storage,
conversion) and nothing else. The no-op method takes and returns raw bytes (no protobuf
parsing): it echoes the request.

    python -m bench.bench_server --database-url sqlite:////tmp/bench.db [--profile OUT.prof]
        [--time-layers] [--upstream-base-url http://127.0.0.1:PORT/v1]

Logs `memori-server listening address=HOST:PORT` like `memori-server serve` and runs until
SIGTERM/SIGINT. `--profile` writes cProfile statistics of the whole server (event loop
thread) on exit; `--time-layers` logs, on exit, how long the Get and Complete handlers and
the storage and upstream layers under them took (percentiles), to locate where the time goes.
`--upstream-base-url` is the ChatService's upstream, as for `memori-server serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from memori_server.app import MemoriServer
from memori_server.chat.upstream import Upstream
from memori_server.config import Settings
from memori_server.logging_setup import configure_logging
from memori_server.services.chat_service import ChatService
from memori_server.services.session_service import SessionService
from memori_server.storage.session_store import SessionStore
from memori_server.storage.turn_store import TurnStore

NOOP_SERVICE = "memori.bench.Noop"
NOOP_METHOD = f"/{NOOP_SERVICE}/Call"
log = logging.getLogger("bench.bench_server")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


async def _noop(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


def noop_handler() -> grpc.GenericRpcHandler[bytes, bytes]:
    """`memori.bench.Noop/Call`: bytes in, the same bytes out, no (de)serialization."""
    return grpc.method_handlers_generic_handler(
        NOOP_SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(_noop)}
    )


class LayerTimer:
    """Wall time of selected coroutine methods, recorded per call (for --time-layers)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def wrap(self, owner: type, name: str) -> None:
        original = getattr(owner, name)
        samples = self.samples.setdefault(f"{owner.__name__}.{name}", [])

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                samples.append(time.perf_counter() - start)

        setattr(owner, name, timed)

    def report(self) -> None:
        for name, samples in self.samples.items():
            if len(samples) < 2:
                continue
            cuts = statistics.quantiles(samples, n=100)
            log.info(
                "layer timing",
                extra={
                    "layer": name,
                    "calls": len(samples),
                    "p50_us": round(cuts[49] * 1e6, 1),
                    "p99_us": round(cuts[98] * 1e6, 1),
                    "mean_us": round(statistics.fmean(samples) * 1e6, 1),
                },
            )


async def serve(settings: Settings) -> None:
    await MemoriServer(settings, extra_handlers=[noop_handler()]).serve_until_signalled()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_server", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--profile", metavar="OUT", help="write cProfile stats here on exit")
    parser.add_argument(
        "--time-layers",
        action="store_true",
        help="log Get/Complete handler, storage and upstream timings on exit",
    )
    parser.add_argument("--upstream-base-url", default="", help="the ChatService's upstream")
    parser.add_argument(
        "--history-token-budget", type=int, help="the server's history budget (its default)"
    )
    parser.add_argument(
        "--sqlite-synchronous", choices=("full", "normal"), help="SQLite's synchronous mode"
    )
    args = parser.parse_args(argv)
    values: dict[str, object] = {
        "listen": args.listen,
        "database_url": args.database_url,
        "upstream_base_url": args.upstream_base_url,
        # One tenant at machine speed, beyond the default per-tenant limits: the benchmarks
        # measure the proxy, not its fairness limits.
        "tenant_completions_per_second": 0,
        "tenant_max_concurrent_completions": 0,
    }
    if args.history_token_budget is not None:
        values["history_token_budget"] = args.history_token_budget
    if args.sqlite_synchronous is not None:
        values["sqlite_synchronous"] = args.sqlite_synchronous
    settings = Settings.model_validate(values)
    configure_logging("INFO", "text")
    timer = LayerTimer()
    if args.time_layers:
        # Order matters: the handler wrapper must see the store wrapper's class attribute.
        timer.wrap(SessionStore, "get")
        timer.wrap(SessionService, "Get")
        timer.wrap(TurnStore, "load")
        timer.wrap(TurnStore, "store_turn")
        timer.wrap(Upstream, "complete")
        timer.wrap(ChatService, "Complete")
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(serve(settings))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        timer.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
