"""Health checks while large calls run: one caller's big request must not stall the server.

Four callers each own a session of 2,000 stored messages and call `Complete` again and
again, each time resending the session's last 2,047 messages plus a new one (a full-history
app at the request cap of 2,048). Meanwhile another client, in this process, calls
`grpc.health.v1.Health/Check` every 10 ms. The callers run in a separate process, so their
own work does not slow the prober. Reported: the health check's p50/p99 while idle and while
loaded, and their ratio. Goal: p99 under load below 100 ms.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, common_pb2

GOAL_P99_MS = 100.0
CALLERS = 4
STORED = 2000
RESENT = 2047
PROBE_INTERVAL = 0.01
MODEL = "gpt-4o-mini"
_TEXT = "This message stands for an ordinary chat turn of about one hundred characters, n="


@dataclass(frozen=True)
class Plan:
    seconds: float  # per phase: idle, then loaded

    def describe(self) -> str:
        return (
            f"{CALLERS} callers each resend {RESENT + 1} messages into a {STORED}-message "
            f"session; Health/Check every {PROBE_INTERVAL * 1000:.0f} ms, {self.seconds:g} s "
            "idle then as long loaded"
        )


FULL = Plan(seconds=10.0)
QUICK = Plan(seconds=1.5)


def _percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Result:
    backend: str
    idle: Sequence[float]
    loaded: Sequence[float]
    big_calls: int

    @property
    def loaded_p99_ms(self) -> float:
        return _percentile(self.loaded, 99) * 1000

    @property
    def passed(self) -> bool:
        return self.big_calls > 0 and self.loaded_p99_ms < GOAL_P99_MS


def _message(role: int, text: str) -> common_pb2.ChatMessage:
    return common_pb2.ChatMessage(role=role, content=text)  # type: ignore[arg-type]


async def _caller(target: str, index: int, stop_at: float) -> int:
    """One full-history caller: seeds its session, then resends until `stop_at`."""
    who = common_pb2.Attribution(entity_id=f"health-bench-{index}-{time.time_ns()}")
    history = [
        _message(common_pb2.ROLE_USER if n % 2 == 0 else common_pb2.ROLE_ASSISTANT, f"{_TEXT}{n}")
        for n in range(STORED)
    ]
    calls = 0
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)]
    ) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)

        async def send(messages: list[common_pb2.ChatMessage], session_id: str) -> str:
            request = chat_pb2.CompleteRequest(
                attribution=who,
                session_id=session_id,
                request=chat_pb2.ChatCompletionRequest(model=MODEL, messages=messages),
            )
            response = await chat.Complete(request, timeout=120)
            history.append(
                _message(common_pb2.ROLE_ASSISTANT, response.completion.choices[0].message.content)
            )
            return str(response.session.id)

        session_id = await send(list(history), "")
        while time.time() < stop_at:
            new = _message(common_pb2.ROLE_USER, f"{_TEXT}new {calls}")
            await send([*history[-RESENT:], new], session_id)
            history.insert(len(history) - 1, new)
            calls += 1
    return calls


async def _callers(target: str, stop_at: float) -> int:
    counts = await asyncio.gather(*(_caller(target, n, stop_at) for n in range(CALLERS)))
    return sum(counts)


def _load(target: str, stop_at: float, calls: multiprocessing.Queue[int]) -> None:
    calls.put(asyncio.run(_callers(target, stop_at)))


def _probe(health: health_pb2_grpc.HealthStub, until: float) -> list[float]:
    samples = []
    while time.time() < until:
        started = time.perf_counter()
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        samples.append(time.perf_counter() - started)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        time.sleep(PROBE_INTERVAL)
    return samples


def measure(target: str, backend: str, plan: Plan) -> Result:
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        idle = _probe(health, time.time() + plan.seconds)
        context = multiprocessing.get_context("spawn")
        calls: multiprocessing.Queue[int] = context.Queue()
        # Seeding takes a big call per caller; the loaded phase starts when they run.
        stop_at = time.time() + 2 + plan.seconds
        loader = context.Process(target=_load, args=(target, stop_at, calls), daemon=True)
        loader.start()
        loaded = _probe(health, stop_at)
        big_calls = calls.get(timeout=300)
        loader.join(30)
    return Result(backend, idle, loaded, big_calls)


def format_table(results: Sequence[Result]) -> str:
    lines = [
        f"{'backend':<11} {'phase':<8} {'checks':>7} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}",
        "-" * 58,
    ]
    for result in results:
        for phase, samples in (("idle", result.idle), ("loaded", result.loaded)):
            lines.append(
                f"{result.backend:<11} {phase:<8} {len(samples):>7} "
                f"{_percentile(samples, 50) * 1000:>9.3f} {_percentile(samples, 99) * 1000:>9.3f} "
                f"{max(samples) * 1000:>9.3f}"
            )
        ratio = _percentile(result.loaded, 99) / _percentile(result.idle, 99)
        verdict = "meets" if result.passed else "MISSES"
        lines.append(
            f"{result.backend:<11} {'load/idle':<8} {'':>7} "
            f"{_percentile(result.loaded, 50) / _percentile(result.idle, 50):>8.2f}x "
            f"{ratio:>8.2f}x  {result.big_calls} big calls; p99 {verdict} the goal of "
            f"< {GOAL_P99_MS:.0f} ms"
        )
    return "\n".join(lines)
