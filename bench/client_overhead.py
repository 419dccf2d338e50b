"""The Python client's own cost: `create` through memori_client against the raw stub.

Both paths run in this process, sequentially, against the same server and stand-in
upstream (delay 0), with the same request (one new user message): the raw path calls
`ChatServiceStub.Complete` on a plain sync grpc channel, the client path calls
`chat.completions.create` on an `openai.OpenAI` (default settings: 2 retries, so each call
carries a request id, as the raw path's do) registered with `Memori`, which builds the
same CompleteRequest, makes the same RPC and rebuilds a genuine `ChatCompletion` from the
upstream JSON. Every call of either path goes to a new session (and carries a new request
id), so the server does the same work for both; only the client-side work differs.
Blocks of 50 calls alternate between the paths (which one goes first alternates too), after
warm-up blocks. The async path (`openai.AsyncOpenAI`, grpc.aio stub) is measured the same
way, for information.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc
import openai
from memori_client import Memori
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from openai.types.chat import ChatCompletion

from bench.session_get import Latencies

GOAL_P50_RATIO = 1.1
BLOCK = 50
MODEL = "gpt-4o-mini"
TEXT = "What is the capital of Portugal?"


@dataclass(frozen=True)
class Result:
    backend: str
    mode: str
    client: Latencies
    raw: Latencies

    @property
    def p50_ratio(self) -> float:
        return self.client.p50 / self.raw.p50

    @property
    def p99_ratio(self) -> float:
        return self.client.p99 / self.raw.p99


def _raw_request(attribution: common_pb2.Attribution) -> chat_pb2.CompleteRequest:
    return chat_pb2.CompleteRequest(
        session_id=str(uuid.uuid4()),
        attribution=attribution,
        request_id=str(uuid.uuid4()),
        request=chat_pb2.ChatCompletionRequest(
            model=MODEL, messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=TEXT)]
        ),
    )


def _check(reply: ChatCompletion) -> None:
    if reply.choices[0].message.content != f"echo: {TEXT}":
        raise RuntimeError(f"unexpected reply: {reply}")


def measure_sync(target: str, backend: str, calls: int, warmup: int) -> Result:
    attribution = common_pb2.Attribution(entity_id=f"bench-{uuid.uuid4().hex}", process_id="raw")
    client = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    memori = Memori(target).attribution(f"bench-{uuid.uuid4().hex}", "client")
    memori.llm.register(client)
    raw_samples: list[float] = []
    client_samples: list[float] = []
    with grpc.insecure_channel(target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)

        def raw(into: list[float]) -> None:
            request = _raw_request(attribution)
            start = time.perf_counter()
            reply = stub.Complete(request, timeout=30)
            into.append(time.perf_counter() - start)
            _check(ChatCompletion.model_validate_json(reply.completion_json))

        def through_client(into: list[float]) -> None:
            memori.reset_session()  # a new session per call, as for the raw path
            start = time.perf_counter()
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": TEXT}], timeout=30
            )
            into.append(time.perf_counter() - start)
            _check(reply)

        _alternate(warmup, raw, through_client, [], [])
        _alternate(calls, raw, through_client, raw_samples, client_samples)
    memori.close()
    return Result(
        backend, "sync", Latencies("client", client_samples), Latencies("raw stub", raw_samples)
    )


def _schedule(calls: int) -> Iterator[tuple[int, int]]:
    """(path 0 or 1, calls) in blocks that alternate which path goes first."""
    for block in range(max(1, calls // BLOCK)):
        for path in (0, 1) if block % 2 == 0 else (1, 0):
            yield path, min(BLOCK, calls)


def _alternate(
    calls: int,
    first: Callable[[list[float]], None],
    second: Callable[[list[float]], None],
    first_samples: list[float],
    second_samples: list[float],
) -> None:
    paths = ((first, first_samples), (second, second_samples))
    for path, count in _schedule(calls):
        call, into = paths[path]
        for _ in range(count):
            call(into)


async def measure_async(target: str, backend: str, calls: int, warmup: int) -> Result:
    attribution = common_pb2.Attribution(entity_id=f"bench-{uuid.uuid4().hex}", process_id="raw")
    client = openai.AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    memori = Memori(target).attribution(f"bench-{uuid.uuid4().hex}", "client")
    memori.llm.register(client)
    raw_samples: list[float] = []
    client_samples: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)

        async def raw(into: list[float]) -> None:
            request = _raw_request(attribution)
            start = time.perf_counter()
            reply = await stub.Complete(request, timeout=30)
            into.append(time.perf_counter() - start)
            _check(ChatCompletion.model_validate_json(reply.completion_json))

        async def through_client(into: list[float]) -> None:
            memori.reset_session()
            start = time.perf_counter()
            reply = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": TEXT}], timeout=30
            )
            into.append(time.perf_counter() - start)
            _check(reply)

        await _alternate_async(warmup, raw, through_client, [], [])
        await _alternate_async(calls, raw, through_client, raw_samples, client_samples)
    await memori.aclose()
    return Result(
        backend, "async", Latencies("client", client_samples), Latencies("raw stub", raw_samples)
    )


async def _alternate_async(
    calls: int,
    first: Callable[[list[float]], Awaitable[None]],
    second: Callable[[list[float]], Awaitable[None]],
    first_samples: list[float],
    second_samples: list[float],
) -> None:
    paths = ((first, first_samples), (second, second_samples))
    for path, count in _schedule(calls):
        call, into = paths[path]
        for _ in range(count):
            await call(into)


def measure(target: str, backend: str, calls: int, warmup: int) -> list[Result]:
    return [
        measure_sync(target, backend, calls, warmup),
        asyncio.run(measure_async(target, backend, calls, warmup)),
    ]


def format_table(results: Sequence[Result]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1e3:9.3f}"

    header = (
        f"{'backend':<12}{'mode':<7}{'path':<10}{'calls':>7}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'mean ms':>10}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        for latencies in (result.client, result.raw):
            lines.append(
                f"{result.backend:<12}{result.mode:<7}{latencies.rpc:<10}"
                f"{len(latencies.samples):>7}{ms(latencies.p50):>10}{ms(latencies.p99):>10}"
                f"{ms(latencies.mean):>10}"
            )
        verdict = "meets" if result.p50_ratio <= GOAL_P50_RATIO else "MISSES"
        lines.append(
            f"{result.backend:<12}{result.mode:<7}{'client/raw':<10}{'':>7}"
            f"{result.p50_ratio:>9.2f}x{result.p99_ratio:>9.2f}x"
            f"{result.client.mean / result.raw.mean:>9.2f}x"
            f"   p50 {verdict} the goal of <= {GOAL_P50_RATIO}x"
        )
        lines.append("")
    return "\n".join(lines).rstrip()
