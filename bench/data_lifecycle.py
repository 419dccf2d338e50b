"""What the data lifecycle costs: request-id records, SQLite's durable commits, erasure.

- record bytes per streamed token: a StreamComplete with a request id and a reply of about
  1,000 tokens, its record read back from the database, against what the former records
  kept (every raw chunk, `json.dumps` of their texts), computed from the same chunks;
- SQLite commit durability: `Complete` p50 on a server with `--sqlite-synchronous full` (the
  default) against one with `normal`, each call in a new session, blocks of 50 alternating;
- erasure: `EntityService.Erase` of an entity holding 100,000 messages in 10 sessions,
  seeded straight into the database, timed from the client.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx2
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, common_pb2, entity_pb2, entity_pb2_grpc
from memori_server.domain import Attribution
from memori_server.services.tenancy import DEFAULT_TENANT
from memori_server.storage.database import Database
from memori_server.storage.migrate import migrate
from memori_server.storage.records import NewMessage
from memori_server.storage.session_store import SessionStore
from sqlalchemy import text

from bench.launch import bench_server
from bench.session_get import Latencies

MODEL = "gpt-4o-mini"
REPLY_WORDS = 1000
ERASED_MESSAGES = 100_000
ERASED_SESSIONS = 10
BLOCK = 50


@dataclass(frozen=True)
class Plan:
    durability_rounds: int = 8
    erase_messages: int = ERASED_MESSAGES


FULL = Plan()
QUICK = Plan(durability_rounds=1, erase_messages=2_000)


@dataclass(frozen=True)
class Result:
    backend: str
    stream_tokens: int
    record_bytes: int
    former_record_bytes: int
    erase_messages: int
    erase_seconds: float
    full: Latencies | None  # SQLite only
    normal: Latencies | None


def _attribution() -> common_pb2.Attribution:
    return common_pb2.Attribution(entity_id=f"bench-{uuid.uuid4().hex[:12]}", process_id="bench")


def _record_sizes(target: str, control_url: str, database_url: str) -> tuple[int, int, int]:
    """(content chunks, bytes kept now, bytes the former raw-chunk records kept)."""
    words = " ".join(f"word{n}" for n in range(REPLY_WORDS))
    script = httpx2.post(f"{control_url}/_standin/script", json=[{"reply": {"content": words}}])
    script.raise_for_status()
    request_id = str(uuid.uuid4())
    with grpc.insecure_channel(target) as channel:
        responses = list(
            chat_pb2_grpc.ChatServiceStub(channel).StreamComplete(
                chat_pb2.StreamCompleteRequest(
                    attribution=_attribution(),
                    request_id=request_id,
                    request=chat_pb2.ChatCompletionRequest(
                        model=MODEL,
                        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="go")],
                    ),
                ),
                timeout=60,
            )
        )
    chunks = [r.chunk_json for r in responses[1:]]
    tokens = sum(1 for r in responses[1:] for c in r.chunk.choices if c.delta.content)
    former = len(json.dumps(chunks).encode())
    database = Database(database_url, 1)
    try:
        with database.engine.connect() as connection:
            kept = connection.execute(
                text("SELECT response FROM completion_requests WHERE request_id = :r"),
                {"r": request_id},
            ).scalar_one()
    finally:
        asyncio.run(database.close())
    return tokens, len(kept.encode()), former


async def seed_entity(database_url: str, messages: int) -> str:
    """An entity with `messages` messages in ERASED_SESSIONS sessions; returns its id."""
    database = Database(database_url, 2)
    entity = f"bench-erase-{uuid.uuid4().hex[:8]}"
    try:
        await migrate(database)
        store = SessionStore(database)
        per_session = messages // ERASED_SESSIONS
        for number in range(ERASED_SESSIONS):
            session = await store.reset(DEFAULT_TENANT, Attribution(entity, f"agent-{number}"))
            for start in range(0, per_session, 5000):
                batch = [
                    NewMessage("user" if n % 2 == 0 else "assistant", f"message {n} of {entity}")
                    for n in range(start, min(per_session, start + 5000))
                ]
                await store.append_messages(DEFAULT_TENANT, session.id, batch)
    finally:
        await database.close()
    return entity


def _erase(target: str, entity: str) -> float:
    with grpc.insecure_channel(target) as channel:
        stub = entity_pb2_grpc.EntityServiceStub(channel)
        started = time.perf_counter()
        reply = stub.Erase(entity_pb2.EraseRequest(entity_id=entity), timeout=600)
        elapsed = time.perf_counter() - started
    if reply.deleted_message_count == 0:
        raise AssertionError(f"the erasure of {entity} deleted nothing")
    return elapsed


def _complete_block(stub: chat_pb2_grpc.ChatServiceStub, into: list[float]) -> None:
    for _ in range(BLOCK):
        request = chat_pb2.CompleteRequest(
            attribution=_attribution(),
            session_id=str(uuid.uuid4()),
            request=chat_pb2.ChatCompletionRequest(
                model=MODEL,
                messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="hi")],
            ),
        )
        started = time.perf_counter()
        stub.Complete(request, timeout=30)
        into.append(time.perf_counter() - started)


def _durability(upstream_base_url: str, rounds: int) -> tuple[Latencies, Latencies]:
    """Complete p50 with synchronous=FULL against NORMAL, on SQLite files of their own."""
    samples: dict[str, list[float]] = {"full": [], "normal": []}
    with tempfile.TemporaryDirectory(prefix="memori-durability-") as tmp:
        servers = {
            mode: bench_server(
                f"sqlite:///{Path(tmp) / f'{mode}.db'}",
                "--upstream-base-url",
                upstream_base_url,
                "--sqlite-synchronous",
                mode,
            )
            for mode in samples
        }
        with servers["full"] as full, servers["normal"] as normal:
            targets = {"full": full.target, "normal": normal.target}
            channels = {mode: grpc.insecure_channel(target) for mode, target in targets.items()}
            stubs = {mode: chat_pb2_grpc.ChatServiceStub(ch) for mode, ch in channels.items()}
            for mode in samples:  # warm-up
                _complete_block(stubs[mode], [])
            for round_ in range(rounds):
                order = ("full", "normal") if round_ % 2 == 0 else ("normal", "full")
                for mode in order:
                    _complete_block(stubs[mode], samples[mode])
            for channel in channels.values():
                channel.close()
    return Latencies("full", samples["full"]), Latencies("normal", samples["normal"])


def measure(
    target: str,
    control_url: str,
    upstream_base_url: str,
    backend: str,
    database_url: str,
    entity: str,
    plan: Plan,
) -> Result:
    tokens, kept, former = _record_sizes(target, control_url, database_url)
    erase_seconds = _erase(target, entity)
    full = normal = None
    if backend == "sqlite":
        full, normal = _durability(upstream_base_url, plan.durability_rounds)
    return Result(backend, tokens, kept, former, plan.erase_messages, erase_seconds, full, normal)


def format_report(results: Sequence[Result]) -> str:
    lines = ["data lifecycle"]
    for result in results:
        lines.append(
            f"{result.backend:<11} stream record: {result.record_bytes} bytes for "
            f"{result.stream_tokens} streamed tokens = "
            f"{result.record_bytes / result.stream_tokens:.1f} bytes/token "
            f"(raw chunks kept before: {result.former_record_bytes / result.stream_tokens:.1f} "
            f"bytes/token, {result.former_record_bytes / result.record_bytes:.1f}x more)"
        )
        lines.append(
            f"{result.backend:<11} erase: {result.erase_messages} messages in "
            f"{ERASED_SESSIONS} sessions in {result.erase_seconds * 1000:.0f} ms"
        )
        if result.full is not None and result.normal is not None:
            lines.append(
                f"{result.backend:<11} Complete p50 with synchronous=full "
                f"{result.full.p50 * 1000:.3f} ms, normal {result.normal.p50 * 1000:.3f} ms: "
                f"full costs {result.full.p50 / result.normal.p50:.2f}x "
                f"({(result.full.p50 - result.normal.p50) * 1000:+.3f} ms a call)"
            )
    return "\n".join(lines)
