"""Long-term memory quality: evidence recall of `MemoryService.Search` on known conversations.

The dataset is bench/memory_data.py's (people talking to an assistant over months; questions
whose evidence messages are known, in four categories: single_fact, multi_hop, temporal,
knowledge_update). Against the real server, in this process (`MemoriServer` with long-term
memory on), on a fresh database:

1. every session is stored with one `SessionService.AppendMessages` call (a new session id,
   the session's date as `create_time`, entity = the dataset's person, process "bench");
   the returned sequences map each (session, message) of the dataset to what the server
   stored;
2. `MemoryService.GetIndexStatus` is polled until nothing is pending (the index is built
   once; its time is reported);
3. for each retrieval mode (lexical only, dense only, hybrid) a server with that
   `--memory-search-mode` is started on the same database (nothing left to index) and each
   question is searched twice, as the entity, with nothing excluded: within a budget of 700
   tokens (page_size 100, token_budget 700) and as the top 10 (page_size 10, no budget).

A question's evidence recall is the fraction of its evidence messages that some returned
memory covers (same session, sequence among the memory's `sequences`); reported as means per
category and overall, per mode and setting side by side, with the mean tokens returned and
the p50 latency of a search (client-side, over loopback). The reference goal (on a public
LoCoMo-like benchmark, other data) is a hybrid recall of at least 0.75 within 700 tokens, and
the aim 0.90; plain hybrid retrieval over single messages reaches about 0.62 there.

    python -m bench.memory_quality [--quick] [--database-url URL] [--details FILE]

runs it alone: on a fresh SQLite file, and on a fresh PostgreSQL database too when an admin
URL is given (or MEMORI_TEST_DATABASE_URL); `--details` writes each question's evidence,
recall and returned memories per mode and setting (JSON); `--quick` is two entities.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from memori_proto.v1 import (
    common_pb2,
    memory_pb2,
    memory_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)
from memori_server.app import MemoriServer
from memori_server.config import Settings

from bench import memory_data
from bench.launch import postgres_admin_url, postgres_database, sqlite_database
from bench.memory_data import CATEGORIES, Dataset

MODES = ("lexical", "dense", "hybrid")
# (label, page_size, token_budget)
SETTINGS = (("700 tokens", 100, 700), ("10 results", 10, 0))
PROCESS_ID = "bench"
GOAL, AIM = 0.75, 0.90

Location = tuple[str, int]  # (session id, sequence) as stored
Key = tuple[str, int, int]  # (entity id, session index, message index) in the dataset


@dataclass(frozen=True)
class Plan:
    entities: int
    sessions: tuple[int, int]
    seed: int = memory_data.DEFAULT_SEED
    index_timeout: float = 900.0


FULL = Plan(memory_data.DEFAULT_ENTITIES, memory_data.DEFAULT_SESSIONS)
QUICK = Plan(2, (8, 10), index_timeout=300.0)


@dataclass(frozen=True)
class Hit:
    """What scoring needs of a returned `Memory`."""

    session_id: str
    sequences: tuple[int, ...]
    token_count: int


# (entity id, query, page_size, token_budget) -> memories, best first
Search = Callable[[str, str, int, int], Awaitable[Sequence[Hit]]]


def evidence_recall(evidence: Sequence[Location], hits: Sequence[Hit]) -> float:
    """The fraction of `evidence` covered by some hit (same session, sequence in it)."""
    covered = {(hit.session_id, sequence) for hit in hits for sequence in hit.sequences}
    return sum(location in covered for location in evidence) / len(evidence)


@dataclass(frozen=True)
class Answer:
    """One question searched under one setting."""

    recall: float
    tokens: int
    seconds: float
    hits: tuple[Hit, ...]


@dataclass(frozen=True)
class ModeResult:
    mode: str
    # setting label -> one answer per question, in the dataset's order
    answers: dict[str, tuple[Answer, ...]]

    def recall(self, dataset: Dataset, setting: str, category: str | None = None) -> float:
        picked = [
            answer.recall
            for question, answer in zip(dataset.questions, self.answers[setting], strict=True)
            if category is None or question.category == category
        ]
        return statistics.fmean(picked) if picked else float("nan")

    def mean_tokens(self, setting: str) -> float:
        return statistics.fmean(answer.tokens for answer in self.answers[setting])

    def p50_ms(self, setting: str) -> float:
        return statistics.median(answer.seconds for answer in self.answers[setting]) * 1000


@dataclass(frozen=True)
class Result:
    backend: str
    dataset: Dataset
    load_seconds: float  # AppendMessages of the whole dataset
    index_seconds: float  # from the first AppendMessages until nothing is pending
    indexed: int
    stored: dict[Key, Location]
    modes: tuple[ModeResult, ...]


def evidence_locations(dataset: Dataset, stored: dict[Key, Location]) -> list[list[Location]]:
    """Each question's evidence as stored, in the dataset's order."""
    return [
        [stored[(question.entity_id, s, m)] for s, m in question.evidence]
        for question in dataset.questions
    ]


async def evaluate(
    mode: str, search: Search, dataset: Dataset, stored: dict[Key, Location]
) -> ModeResult:
    """Every question searched under every setting, one search at a time."""
    evidence = evidence_locations(dataset, stored)
    answers: dict[str, tuple[Answer, ...]] = {}
    for label, page_size, budget in SETTINGS:
        found: list[Answer] = []
        for question, locations in zip(dataset.questions, evidence, strict=True):
            start = time.perf_counter()
            hits = tuple(await search(question.entity_id, question.text, page_size, budget))
            seconds = time.perf_counter() - start
            found.append(
                Answer(
                    evidence_recall(locations, hits),
                    sum(hit.token_count for hit in hits),
                    seconds,
                    hits,
                )
            )
        answers[label] = tuple(found)
    return ModeResult(mode, answers)


# ---------------------------------------------------------------------------------------------
# The real server


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _settings(database_url: str, mode: str) -> Settings:
    return Settings.model_validate(
        {
            "listen": "127.0.0.1:0",
            "database_url": database_url,
            "memory": True,
            "memory_search_mode": mode,
            "recall_default": False,
            "tenant_completions_per_second": 0,
            "tenant_max_concurrent_completions": 0,
        }
    )


@asynccontextmanager
async def memory_server(database_url: str, mode: str) -> AsyncIterator[grpc.aio.Channel]:
    """The real app in this process with long-term memory on in `mode`; a channel to it."""
    server = MemoriServer(_settings(database_url, mode))
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(grace=1.0)


async def load(channel: grpc.aio.Channel, dataset: Dataset) -> dict[Key, Location]:
    """Stores every session with one AppendMessages call; where each message landed."""
    stub = session_pb2_grpc.SessionServiceStub(channel)
    roles = {"user": common_pb2.ROLE_USER, "assistant": common_pb2.ROLE_ASSISTANT}
    stored: dict[Key, Location] = {}
    for entity in dataset.entities:
        attribution = common_pb2.Attribution(entity_id=entity.entity_id, process_id=PROCESS_ID)
        for s, session in enumerate(entity.sessions):
            session_id = str(uuid.uuid4())
            response = await stub.AppendMessages(
                session_pb2.AppendMessagesRequest(
                    attribution=attribution,
                    session_id=session_id,
                    messages=[
                        common_pb2.ChatMessage(role=roles[m.role], content=m.content)
                        for m in session.messages
                    ],
                    create_time=_timestamp(session.date),
                ),
                timeout=60,
            )
            if response.session.id != session_id or len(response.sequences) != len(
                session.messages
            ):
                raise RuntimeError(
                    f"AppendMessages stored {len(response.sequences)} of "
                    f"{len(session.messages)} messages in {response.session.id!r}, "
                    f"not {session_id!r}"
                )
            for m, sequence in enumerate(response.sequences):
                stored[(entity.entity_id, s, m)] = (session_id, sequence)
    return stored


async def wait_indexed(channel: grpc.aio.Channel, limit: float) -> int:
    """Polls GetIndexStatus until nothing is pending (for at most `limit` seconds); the
    indexed message count."""
    stub = memory_pb2_grpc.MemoryServiceStub(channel)
    request = memory_pb2.GetIndexStatusRequest()
    status = await stub.GetIndexStatus(request, timeout=30)
    try:
        async with asyncio.timeout(limit):
            while status.pending_message_count:
                await asyncio.sleep(0.25)
                status = await stub.GetIndexStatus(request, timeout=30)
    except TimeoutError:
        raise TimeoutError(
            f"{status.pending_message_count} messages still not indexed after {limit:.0f} s "
            f"({status.indexed_message_count} indexed)"
        ) from None
    return status.indexed_message_count


def grpc_search(channel: grpc.aio.Channel) -> Search:
    stub = memory_pb2_grpc.MemoryServiceStub(channel)

    async def search(entity_id: str, query: str, page_size: int, budget: int) -> list[Hit]:
        response = await stub.Search(
            memory_pb2.SearchRequest(
                attribution=common_pb2.Attribution(entity_id=entity_id),
                query=query,
                page_size=page_size,
                token_budget=budget,
            ),
            timeout=30,
        )
        return [
            Hit(memory.session_id, tuple(memory.sequences), memory.token_count)
            for memory in response.memories
        ]

    return search


async def measure(database_url: str, backend: str, plan: Plan) -> Result:
    """Loads the dataset into a fresh database, waits for the index, then evaluates each mode
    on its own server over the same database."""
    dataset = memory_data.generate(plan.seed, plan.entities, plan.sessions)
    async with memory_server(database_url, "hybrid") as channel:
        start = time.perf_counter()
        stored = await load(channel, dataset)
        load_seconds = time.perf_counter() - start
        indexed = await wait_indexed(channel, plan.index_timeout)
        index_seconds = time.perf_counter() - start
    modes = []
    for mode in MODES:
        async with memory_server(database_url, mode) as channel:
            await wait_indexed(channel, plan.index_timeout)
            modes.append(await evaluate(mode, grpc_search(channel), dataset, stored))
    return Result(backend, dataset, load_seconds, index_seconds, indexed, stored, tuple(modes))


def describe(plan: Plan) -> str:
    return (
        f"{plan.entities} entities of {plan.sessions[0]} to {plan.sessions[1]} sessions (seed "
        f"{plan.seed}), modes {', '.join(MODES)}"
    )


def format_report(results: Sequence[Result]) -> str:
    lines: list[str] = []
    for result in results:
        dataset = result.dataset
        rate = dataset.message_count / result.index_seconds if result.index_seconds else 0.0
        lines += [
            f"{result.backend}: {dataset.describe()}",
            f"{result.backend}: stored in {result.load_seconds:.1f} s and indexed in "
            f"{result.index_seconds:.1f} s ({rate:.0f} messages/s; {result.indexed} indexed)",
            "",
            f"{'backend':<11} {'setting':<11} {'category':<17} {'questions':>9} "
            + " ".join(f"{mode:>8}" for mode in MODES),
            "-" * (51 + 9 * len(MODES)),
        ]
        counts = dataset.category_counts()
        for label, _page_size, _budget in SETTINGS:
            for category in (*CATEGORIES, None):
                number = counts[category] if category else len(dataset.questions)
                values = " ".join(
                    f"{mode.recall(dataset, label, category):>8.3f}" for mode in result.modes
                )
                lines.append(
                    f"{result.backend:<11} {label:<11} {category or 'all':<17} {number:>9} {values}"
                )
        for label, _page_size, _budget in SETTINGS:
            values = " ".join(f"{mode.mean_tokens(label):>8.0f}" for mode in result.modes)
            lines.append(f"{result.backend:<11} {label:<11} {'mean tokens':<17} {'':>9} {values}")
        for label, _page_size, _budget in SETTINGS:
            values = " ".join(f"{mode.p50_ms(label):>8.2f}" for mode in result.modes)
            lines.append(f"{result.backend:<11} {label:<11} {'p50 search ms':<17} {'':>9} {values}")
        hybrid = next(mode for mode in result.modes if mode.mode == "hybrid")
        within = hybrid.recall(dataset, SETTINGS[0][0])
        lines += [
            f"{result.backend:<11} hybrid recall within 700 tokens {within:.3f} (on a public "
            f"LoCoMo-like benchmark the goal is >= {GOAL}, the aim {AIM}; this is other data)",
            "",
        ]
    return "\n".join(lines).rstrip()


def write_details(path: Path, results: Sequence[Result]) -> None:
    """Per question: its evidence, and per mode and setting its recall and what came back
    (as dataset positions), for reading the misses."""
    records = []
    for result in results:
        where = {location: key for key, location in result.stored.items()}
        dataset = result.dataset
        entities = {entity.entity_id: entity for entity in dataset.entities}
        for number, question in enumerate(dataset.questions):
            entity = entities[question.entity_id]
            modes = {
                mode.mode: {
                    label: {
                        "recall": answers[number].recall,
                        "tokens": answers[number].tokens,
                        "returned": [
                            [
                                list(where[(hit.session_id, seq)][1:])
                                for seq in hit.sequences
                                if (hit.session_id, seq) in where
                            ]
                            for hit in answers[number].hits
                        ],
                    }
                    for label, answers in mode.answers.items()
                }
                for mode in result.modes
            }
            records.append(
                {
                    "backend": result.backend,
                    "entity": question.entity_id,
                    "category": question.category,
                    "question": question.text,
                    "answer": question.answer,
                    "evidence": [
                        {
                            "session": s,
                            "message": m,
                            "date": f"{entity.sessions[s].date:%Y-%m-%d}",
                            "text": entity.sessions[s].messages[m].content,
                        }
                        for s, m in question.evidence
                    ],
                    "modes": modes,
                }
            )
    path.write_text(json.dumps(records, indent=1) + "\n")


def databases(
    workdir: Path, admin_url: str | None
) -> Iterator[tuple[str, AbstractContextManager[str]]]:
    """A fresh SQLite file under `workdir`, then a fresh PostgreSQL database if configured."""
    yield "sqlite", sqlite_database(workdir)
    if admin_url is not None:
        yield "postgresql", postgres_database(admin_url)


def run(plan: Plan, admin_url: str | None, details: Path | None = None) -> list[Result]:
    """The benchmark on each database, its report printed."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="memori-memory-quality-") as tmp:
        for backend, database in databases(Path(tmp), admin_url):
            with database as url:
                print(f"memory_quality: {backend}; {describe(plan)}", flush=True)
                results.append(asyncio.run(measure(url, backend, plan)))
    print()
    print(format_report(results))
    if details is not None:
        write_details(details, results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory_quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="two entities (a smoke run)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL admin URL (else MEMORI_TEST_DATABASE_URL; SQLite only when neither "
        "is set)",
    )
    parser.add_argument(
        "--details", type=Path, metavar="FILE", help="write per-question results here (JSON)"
    )
    args = parser.parse_args(argv)
    run(QUICK if args.quick else FULL, postgres_admin_url(args.database_url), args.details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
