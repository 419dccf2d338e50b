"""Get(session_id) against a bare no-op unary RPC on the same server and the same channel.

One `grpc.aio` insecure channel; after a warm-up, N sequential `Get` calls (generated stub)
and N no-op calls are interleaved (alternating which goes first), each timed on the client
from call to response. The ratio Get/no-op is what memori adds to a unary call; the goal is
at most 1.3 at p50.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from memori_proto.v1 import common_pb2, session_pb2, session_pb2_grpc

from bench.bench_server import NOOP_METHOD

GOAL_P50_RATIO = 1.3


@dataclass(frozen=True)
class Latencies:
    """Client-side latencies of one RPC kind, in seconds."""

    rpc: str
    samples: Sequence[float]

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile (p in 0..100)."""
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


@dataclass(frozen=True)
class Result:
    backend: str
    get: Latencies
    noop: Latencies

    @property
    def p50_ratio(self) -> float:
        return self.get.p50 / self.noop.p50

    @property
    def p99_ratio(self) -> float:
        return self.get.p99 / self.noop.p99


async def _timed(call: Callable[[], Awaitable[object]], into: list[float]) -> None:
    start = time.perf_counter()
    await call()
    into.append(time.perf_counter() - start)


async def measure(target: str, backend: str, calls: int, warmup: int) -> Result:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        noop = channel.unary_unary(NOOP_METHOD, None, None)  # raw bytes both ways
        attribution = common_pb2.Attribution(
            entity_id=f"bench-{uuid.uuid4().hex}", process_id="bench"
        )
        session = (await stub.Reset(session_pb2.ResetRequest(attribution=attribution))).session
        request = session_pb2.GetRequest(session_id=session.id)
        payload = request.SerializeToString()

        async def get() -> object:
            response = await stub.Get(request)
            if response.session.id != session.id:
                raise AssertionError(f"Get returned {response.session.id}, not {session.id}")
            return response

        async def bare() -> object:
            echoed = await noop(payload)
            if echoed != payload:
                raise AssertionError("the no-op RPC did not echo its request")
            return echoed

        scratch: list[float] = []
        for _ in range(warmup):
            await _timed(get, scratch)
            await _timed(bare, scratch)
        get_samples: list[float] = []
        noop_samples: list[float] = []
        for index in range(calls):
            if index % 2:
                await _timed(get, get_samples)
                await _timed(bare, noop_samples)
            else:
                await _timed(bare, noop_samples)
                await _timed(get, get_samples)
    return Result(backend, Latencies("Get", get_samples), Latencies("no-op", noop_samples))


def format_table(results: Sequence[Result]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1e3:9.3f}"

    header = f"{'backend':<12}{'rpc':<12}{'calls':>7}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}"
    lines = [header, "-" * len(header)]
    for result in results:
        for latencies in (result.get, result.noop):
            lines.append(
                f"{result.backend:<12}{latencies.rpc:<12}{len(latencies.samples):>7}"
                f"{ms(latencies.p50):>10}{ms(latencies.p99):>10}{ms(latencies.mean):>10}"
            )
        verdict = "meets" if result.p50_ratio <= GOAL_P50_RATIO else "MISSES"
        lines.append(
            f"{result.backend:<12}{'Get/no-op':<12}{'':>7}{result.p50_ratio:>9.2f}x"
            f"{result.p99_ratio:>9.2f}x{result.get.mean / result.noop.mean:>9.2f}x"
            f"   p50 {verdict} the goal of <= {GOAL_P50_RATIO}x"
        )
        lines.append("")
    return "\n".join(lines).rstrip()
