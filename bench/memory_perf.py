"""Long-term memory's measured goals (the issue's), in one run per database.

Every server here is a real `memori-server serve` process of its own (`--memory`, pointed at
the stand-in upstream, tenant limits off), on a fresh database of its own, so that its CPU
(/proc/<pid>/stat, user + system, all threads) and memory (/proc/<pid>/status VmRSS) are the
server's alone. One entity gets 10,000 messages: 200 sessions of 50 everyday-chat messages
(bench/memory_text.py: user and assistant alternating, varied topics and wording), stored
with `SessionService.AppendMessages`, one call per session, dated a day apart.

1. Recall's cost: `ChatService.Complete` on a new session of that entity (one user message,
   a new session each call) with `recall=RecallOptions(enabled=True)` against the same call
   with `enabled=False`, alternating (which goes first alternates too), after warm-up calls.
   Before each call the bench waits until `GetIndexStatus` shows nothing pending, as in a
   conversation, where the previous turn is indexed before the next message arrives: so each
   recall finds the entity's passages changed since its last search (the previous turn's
   passage was added). Goal: the p50 difference <= 15 ms. Also `MemoryService.Search` alone
   (page 5, budget 700 tokens: recall's defaults), repeated with nothing indexed in between.
2. Indexing rate: from the first `AppendMessages` call to `pending_message_count == 0`
   (polled every 50 ms), messages per second and the server's CPU over that span, with the
   default `--memory-index-duty` and, on a second server, with the other of 0.5 and 1.0
   (the default is read from the server's Settings). Goal: >= 100/s.
3. Completions while indexing: `Complete` p99 without recall (another entity, a new session
   each call) in windows of N sequential calls, alternately idle (nothing pending when it
   starts) and busy (5,000 messages of a third entity stored just before it starts, 100
   sessions of 50); the medians of the windows' p99, and whether the backlog was still
   pending when each busy window ended. Goal: busy <= 1.2x idle. Each call's own turn is
   indexed too (a server with memory indexes every turn), so the calls are 100 ms apart: in
   idle windows the indexer has then caught up before the next call, which the report
   checks (calls that started with nothing pending, from GetIndexStatus read just before).
   Back to back, the calls' own turns would keep the indexer busy in idle windows too.
4. The server's memory: VmRSS of the `--memory` server and of one started with
   `--no-memory` (the same 10,000 messages stored and the same number of `Complete` calls),
   after startup and after the entity was stored (and, with memory, indexed and searched,
   so the vector cache holds it). Reported, no goal.

Then, with the server stopped, where a recall's time goes: the pieces of a search timed in
this process (the server's own `MemoryStore` and `Embedder` on the same database): the query's
embedding, reading and decoding all of the entity's vectors, scoring them, the full-text query
with the vectors indexed since (one transaction, as a search reads them), the deletion check
(a count, once a minute), reading a page of passages; and the whole search with the vectors
held and with them read again.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from memori_proto.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    common_pb2,
    memory_pb2,
    memory_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)
from memori_server.config import Settings
from memori_server.memory.embedder import Embedder
from memori_server.memory.ranking import fts5_match, query_words, scoped_tsquery, tsquery
from memori_server.memory.search import MemorySearch
from memori_server.memory.vectors import nearest, read
from memori_server.services.tenancy import DEFAULT_TENANT
from memori_server.storage.database import Database
from memori_server.storage.memory_store import LexicalQuery, MemoryStore, scope_token

from bench import memory_text
from bench.launch import postgres_database
from bench.session_get import Latencies
from tests.repo_paths import ROOT
from tests.server_process import ServerProcess

MODEL = "gpt-4o-mini"
PROCESS_ID = "bench"
GOAL_RECALL_MS = 15.0  # p50 Complete with recall minus without
GOAL_INDEX_RATE = 100.0  # messages per second
GOAL_BUSY_P99 = 1.2  # Complete p99 while indexing / idle
RECALL_PAGE_SIZE = 5  # recall's defaults, for the Search alone
RECALL_TOKEN_BUDGET = 700
CALL_TIMEOUT = 60.0
# Goal 3: pause before each call, so that in idle windows the indexer has indexed the
# previous call's turn (as between a user's messages) and the call finds nothing pending.
WINDOW_GAP = 0.1
DEFAULT_DUTY = float(Settings.model_fields["memory_index_duty"].default)
OTHER_DUTY = 0.5 if DEFAULT_DUTY == 1.0 else 1.0
_TICKS = os.sysconf("SC_CLK_TCK")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """How much to run. `QUICK` is a smoke test whose figures mean little."""

    sessions: int = 200
    messages_per_session: int = 50
    calls: int = 300
    """Goal 1: measured Complete calls per path (recall on, recall off)."""
    searches: int = 300
    warmup: int = 10
    window_calls: int = 200
    """Goal 3: sequential Complete calls per window."""
    windows: int = 3
    """Goal 3: idle windows, and as many busy ones."""
    backlog_sessions: int = 100
    """Goal 3: sessions (of messages_per_session) stored before each busy window."""
    breakdown_queries: int = 50
    index_timeout: float = 1800.0

    @property
    def messages(self) -> int:
        return self.sessions * self.messages_per_session

    @property
    def backlog(self) -> int:
        return self.backlog_sessions * self.messages_per_session


FULL = Plan()
QUICK = Plan(
    sessions=4,
    calls=10,
    searches=10,
    warmup=2,
    window_calls=10,
    windows=1,
    backlog_sessions=4,
    breakdown_queries=3,
)


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexRun:
    duty: float
    messages: int
    store_seconds: float
    """The AppendMessages calls alone."""
    seconds: float
    """From the first AppendMessages call to nothing pending."""
    server_cpu: float
    """Server CPU seconds over `seconds`."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cores(self) -> float:
        return self.server_cpu / self.seconds


@dataclass(frozen=True)
class Window:
    busy: bool
    latencies: Latencies
    pending_at_start: int
    pending_at_end: int
    server_cores: float
    quiet_calls: int
    """Calls that started with nothing pending (GetIndexStatus read just before)."""


@dataclass(frozen=True)
class Memory:
    """VmRSS in bytes: after startup, and after the entity was stored (and indexed, searched)."""

    startup: int
    loaded: int


@dataclass
class Result:
    backend: str
    plan: Plan
    recall_on: Latencies | None = None
    recall_off: Latencies | None = None
    recalled_mean: float = 0.0
    search: Latencies | None = None
    indexing: list[IndexRun] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    with_memory: Memory | None = None
    without_memory: Memory | None = None
    passages: int = 0
    breakdown: dict[str, float] = field(default_factory=dict)
    """Median milliseconds of each piece of a search, timed in this process."""
    embed_ms: float = 0.0
    embedded: int = 0
    """Milliseconds per passage of embedding the entity's passages in batches, here."""
    load: list[str] = field(default_factory=list)
    """The machine's 1-minute load average at the start and at the end (2 shared cores)."""


# -- processes, databases and calls ------------------------------------------------------------


def databases(
    workdir: Path, admin_url: str | None
) -> Iterator[tuple[str, Callable[[], AbstractContextManager[str]]]]:
    """Per backend, a maker of fresh databases (one per server: nothing else gets indexed)."""
    counter = iter(range(1_000_000))

    @contextmanager
    def sqlite() -> Iterator[str]:
        directory = workdir / f"memory-perf-{next(counter)}"
        directory.mkdir()
        yield f"sqlite:///{directory / 'bench.db'}"

    yield "sqlite", sqlite
    if admin_url is not None:
        postgres_admin = admin_url
        yield "postgresql", lambda: postgres_database(postgres_admin)


@contextmanager
def _server(database_url: str, upstream_base_url: str, *flags: str) -> Iterator[ServerProcess]:
    """`memori-server serve` in a process of its own; tenant limits off (one tenant at
    machine speed: the benchmark measures memory, not the fairness limits)."""
    server = ServerProcess(
        database_url,
        "--upstream-base-url",
        upstream_base_url,
        "--tenant-completions-per-second",
        "0",
        "--tenant-max-concurrent-completions",
        "0",
        *flags,
        cwd=ROOT,
    )
    try:
        server.wait_ready(180)
        yield server
    finally:
        server.stop()


def _duty(duty: float) -> tuple[str, str]:
    return "--memory-index-duty", f"{duty:g}"


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class _Client:
    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.sessions = session_pb2_grpc.SessionServiceStub(self.channel)
        self.chat = chat_pb2_grpc.ChatServiceStub(self.channel)
        self.memory = memory_pb2_grpc.MemoryServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def pending(self) -> int:
        status = self.memory.GetIndexStatus(memory_pb2.GetIndexStatusRequest(), timeout=30)
        return int(status.pending_message_count)

    def wait_indexed(self, timeout: float, poll: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise RuntimeError(f"still {self.pending()} messages pending after {timeout} s")
            time.sleep(poll)

    def store_entity(self, entity: str, sessions: int, per_session: int, seed: int) -> None:
        """`sessions` sessions of `per_session` messages, one AppendMessages call each, dated
        a day apart (the last one yesterday)."""
        rng = random.Random(seed)
        now = datetime.now(UTC)
        for number in range(sessions):
            stamp = Timestamp()
            stamp.FromDatetime(now - timedelta(days=sessions - number, minutes=rng.randint(0, 600)))
            messages = [
                common_pb2.ChatMessage(
                    role=common_pb2.ROLE_USER if role == "user" else common_pb2.ROLE_ASSISTANT,
                    content=text,
                )
                for role, text in memory_text.session(rng, per_session)
            ]
            self.sessions.AppendMessages(
                session_pb2.AppendMessagesRequest(
                    attribution=_attribution(entity),
                    session_id=str(uuid.uuid4()),
                    messages=messages,
                    create_time=stamp,
                ),
                timeout=CALL_TIMEOUT,
            )

    def complete(self, entity: str, text: str, recall: bool) -> tuple[float, int]:
        """One Complete on a new session of `entity`: (seconds, memories recalled)."""
        request = chat_pb2.CompleteRequest(
            attribution=_attribution(entity),
            session_id=str(uuid.uuid4()),
            request=chat_pb2.ChatCompletionRequest(
                model=MODEL,
                messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)],
            ),
            recall=chat_pb2.RecallOptions(enabled=recall),
        )
        started = time.perf_counter()
        reply = self.chat.Complete(request, timeout=CALL_TIMEOUT)
        elapsed = time.perf_counter() - started
        if reply.completion.choices[0].message.content != f"echo: {text}":
            raise AssertionError(f"unexpected reply: {reply.completion_json}")
        return elapsed, len(reply.recalled_memories)


def _attribution(entity: str) -> common_pb2.Attribution:
    return common_pb2.Attribution(entity_id=entity, process_id=PROCESS_ID)


def _queries(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [memory_text.user_message(rng) for _ in range(count)]


# -- the goals ---------------------------------------------------------------------------------


def _index(client: _Client, pid: int, entity: str, duty: float, plan: Plan) -> IndexRun:
    """Goal 2: store the entity, then wait until nothing is pending."""
    cpu = _process_cpu(pid)
    started = time.perf_counter()
    client.store_entity(entity, plan.sessions, plan.messages_per_session, seed=1)
    stored = time.perf_counter()
    client.wait_indexed(plan.index_timeout)
    done = time.perf_counter()
    return IndexRun(duty, plan.messages, stored - started, done - started, _process_cpu(pid) - cpu)


def _recall(client: _Client, entity: str, plan: Plan) -> tuple[Latencies, Latencies, float]:
    """Goal 1: Complete with recall and without, alternating; nothing pending before each."""
    samples: dict[bool, list[float]] = {True: [], False: []}
    recalled: list[int] = []
    queries = _queries(plan.warmup + plan.calls, seed=2)
    for index, text in enumerate(queries):
        for recall in (True, False) if index % 2 == 0 else (False, True):
            client.wait_indexed(plan.index_timeout, poll=0.002)
            seconds, found = client.complete(entity, text, recall)
            if not recall and found:
                raise AssertionError("memories were recalled into a call without recall")
            if index >= plan.warmup:
                samples[recall].append(seconds)
                if recall:
                    recalled.append(found)
    if not any(recalled):
        raise AssertionError("recall found nothing in any call")
    on, off = Latencies("recall on", samples[True]), Latencies("recall off", samples[False])
    return on, off, statistics.fmean(recalled)


def _search(client: _Client, entity: str, plan: Plan) -> Latencies:
    """MemoryService.Search alone, with recall's page and budget."""
    samples = []
    for index, text in enumerate(_queries(plan.warmup + plan.searches, seed=3)):
        request = memory_pb2.SearchRequest(
            attribution=_attribution(entity),
            query=text,
            page_size=RECALL_PAGE_SIZE,
            token_budget=RECALL_TOKEN_BUDGET,
        )
        started = time.perf_counter()
        reply = client.memory.Search(request, timeout=CALL_TIMEOUT)
        if index >= plan.warmup:
            samples.append(time.perf_counter() - started)
        if not reply.memories:
            raise AssertionError(f"Search found nothing for {text!r}")
    return Latencies("Search", samples)


def _windows(client: _Client, pid: int, tag: str, plan: Plan) -> list[Window]:
    """Goal 3: idle and busy windows of Complete calls without recall, alternating."""
    entity = f"{tag}-calls"
    texts = _queries(plan.window_calls, seed=4)
    for text in texts[: plan.warmup]:
        client.complete(entity, text, recall=False)
    windows = []
    for number in range(plan.windows):
        for busy in (False, True):
            client.wait_indexed(plan.index_timeout)
            if busy:
                client.store_entity(
                    f"{tag}-backlog-{number}",
                    plan.backlog_sessions,
                    plan.messages_per_session,
                    seed=10 + number,
                )
            pending = client.pending()
            cpu = _process_cpu(pid)
            started = time.perf_counter()
            samples = []
            quiet = 0
            for text in texts:
                time.sleep(WINDOW_GAP)
                quiet += client.pending() == 0
                samples.append(client.complete(entity, text, recall=False)[0])
            cores = (_process_cpu(pid) - cpu) / (time.perf_counter() - started)
            windows.append(
                Window(
                    busy,
                    Latencies("busy" if busy else "idle", samples),
                    pending,
                    client.pending(),
                    cores,
                    quiet,
                )
            )
    client.wait_indexed(plan.index_timeout)
    return windows


async def _breakdown(
    database_url: str, entity: str, queries: Sequence[str]
) -> tuple[dict[str, float], float]:
    """Each piece of a search, timed here with the server's own parts (median ms); and the
    embedding of stored passages in batches, as the indexer does it (ms a passage)."""
    database = Database(database_url, 2)
    times: dict[str, list[float]] = {}

    def note(name: str, started: float) -> None:
        times.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    try:
        store = MemoryStore(database)
        embedder = await asyncio.to_thread(Embedder, 1)
        search = MemorySearch(store, embedder)
        tenant = DEFAULT_TENANT
        for query in queries:
            started = time.perf_counter()
            vector = embedder.embed_one(query)
            note("query embedding", started)
            started = time.perf_counter()
            rows = await store.vectors(tenant, entity)
            note("vectors read", started)
            started = time.perf_counter()
            held = read(rows)
            note("vectors decode", started)
            started = time.perf_counter()
            top = nearest(held, vector, PROCESS_ID, "", 50)
            note("dense scoring", started)
            words = query_words(query)
            scope = scope_token(tenant, entity)
            lexical = (
                LexicalQuery(fts5_match(scope, words), None, PROCESS_ID, "", 50)
                if store.dialect == "sqlite"
                else LexicalQuery(scoped_tsquery(scope, words), tsquery(words), PROCESS_ID, "", 50)
            )
            started = time.perf_counter()
            found = await store.search_reads(
                tenant, entity, vectors_after=held.last_id, version=False, lexical=lexical
            )
            note("full-text (and new vectors)", started)
            started = time.perf_counter()
            await store.search_reads(tenant, entity, vectors_after=None, version=True, lexical=None)
            note("deletion check (each 60 s)", started)
            ids = [*top, *(passage_id for passage_id, _, _ in found.lexical)]
            started = time.perf_counter()
            await store.passages(tenant, ids[:RECALL_PAGE_SIZE])
            note("passages read", started)
            for warm in (False, True):  # first read again, then held
                if not warm:
                    search.vectors.forget_entity(tenant, entity)
                started = time.perf_counter()
                await search.search(
                    tenant,
                    entity,
                    PROCESS_ID,
                    query,
                    page_size=RECALL_PAGE_SIZE,
                    token_budget=RECALL_TOKEN_BUDGET,
                )
                note("search, vectors held" if warm else "search, vectors read", started)
        search.close()
        times["passages"] = [float(len(rows))]
        texts = [
            row.text
            for row in (await store.passages(tenant, [int(row.id) for row in rows])).values()
        ]
        started = time.perf_counter()
        embedder.embed(texts)
        embed_ms = (time.perf_counter() - started) * 1000 / len(texts)
        times["embedded"] = [float(len(texts))]
    finally:
        await database.close()
    return {name: statistics.median(values) for name, values in times.items()}, embed_ms


def measure(
    backend: str,
    fresh_database: Callable[[], AbstractContextManager[str]],
    upstream_base_url: str,
    plan: Plan,
) -> Result:
    """Three servers, each on a fresh database: --no-memory, --memory (the default duty:
    goals 1 to 4), and --memory with the other duty (goal 2)."""
    result = Result(backend, plan, load=[_load_average()])
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    entity = f"{tag}-remembered"
    print(f"memory_perf: {backend}: a server without memory", flush=True)
    with fresh_database() as url, _server(url, upstream_base_url, "--no-memory") as server:
        time.sleep(1.0)
        startup = _rss(server.process.pid)
        client = _Client(server.target)
        try:
            client.store_entity(entity, plan.sessions, plan.messages_per_session, seed=1)
            for text in _queries(plan.warmup + 2 * plan.calls, seed=2):
                client.complete(entity, text, recall=False)
        finally:
            client.close()
        result.without_memory = Memory(startup, _rss(server.process.pid))

    print(f"memory_perf: {backend}: --memory (duty {DEFAULT_DUTY:g}, the default)", flush=True)
    with fresh_database() as url:
        with _server(url, upstream_base_url, "--memory", *_duty(DEFAULT_DUTY)) as server:
            pid = server.process.pid
            time.sleep(1.0)
            startup = _rss(pid)
            client = _Client(server.target)
            try:
                print(f"memory_perf: {backend}: storing and indexing {plan.messages}", flush=True)
                result.indexing.append(_index(client, pid, entity, DEFAULT_DUTY, plan))
                print(f"memory_perf: {backend}: Complete with and without recall", flush=True)
                result.recall_on, result.recall_off, result.recalled_mean = _recall(
                    client, entity, plan
                )
                result.search = _search(client, entity, plan)
                result.with_memory = Memory(startup, _rss(pid))
                print(f"memory_perf: {backend}: Complete idle and while indexing", flush=True)
                result.windows = _windows(client, pid, tag, plan)
            finally:
                client.close()
        print(f"memory_perf: {backend}: timing a search's pieces", flush=True)
        queries = _queries(plan.breakdown_queries, seed=5)
        result.breakdown, result.embed_ms = asyncio.run(_breakdown(url, entity, queries))
        result.passages = int(result.breakdown.pop("passages"))
        result.embedded = int(result.breakdown.pop("embedded"))

    print(f"memory_perf: {backend}: --memory-index-duty {OTHER_DUTY:g}", flush=True)
    with (
        fresh_database() as url,
        _server(url, upstream_base_url, "--memory", *_duty(OTHER_DUTY)) as server,
    ):
        client = _Client(server.target)
        try:
            result.indexing.append(_index(client, server.process.pid, entity, OTHER_DUTY, plan))
        finally:
            client.close()
    result.load.append(_load_average())
    return result


def describe(plan: Plan) -> str:
    return (
        f"{plan.messages} messages ({plan.sessions} sessions x {plan.messages_per_session}) "
        f"for one entity; {plan.calls} Complete calls a path; {plan.windows} idle and "
        f"{plan.windows} busy windows of {plan.window_calls} calls, {plan.backlog} messages "
        "stored before each busy one"
    )


# -- the report --------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "meets" if met else "MISSES"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _row(goal: str, figure: str, met: str = "") -> str:
    return f"{goal:<48} {figure:<86} {met}".rstrip()


def format_report(results: Sequence[Result]) -> str:
    out: list[str] = []
    for result in results:
        plan = result.plan
        out += [
            f"memory_perf: {result.backend}: {describe(plan)}; load average "
            + " -> ".join(result.load),
            f"{'goal':<48} {'figure':<86} met",
            "-" * 141,
        ]

        on, off, search = result.recall_on, result.recall_off, result.search
        if on is not None and off is not None and search is not None:
            added = on.p50 - off.p50
            out.append(
                _row(
                    f"1 recall adds <= {GOAL_RECALL_MS:g} ms p50 to Complete",
                    f"{added * 1000:+.2f} ms p50 ({on.p50 / off.p50:.2f}x); "
                    f"p99 {(on.p99 - off.p99) * 1000:+.2f} ms ({on.p99 / off.p99:.2f}x)",
                    _verdict(added * 1000 <= GOAL_RECALL_MS),
                )
            )
            for name, latencies, extra in (
                ("Complete, recall on", on, f"; {result.recalled_mean:.1f} memories a call"),
                ("Complete, recall off", off, ""),
                ("MemoryService.Search alone", search, f" ({result.passages} passages)"),
            ):
                out.append(
                    _row(
                        f"  {name}",
                        f"p50 {_ms(latencies.p50)} ms  p99 {_ms(latencies.p99)} ms  "
                        f"{len(latencies.samples)} calls{extra}",
                    )
                )
        for run in result.indexing:
            out.append(
                _row(
                    f"2 indexing >= {GOAL_INDEX_RATE:g} messages/s, duty {run.duty:g}"
                    + (" (default)" if run.duty == DEFAULT_DUTY else ""),
                    f"{run.rate:.1f} messages/s: {run.messages} in {run.seconds:.1f} s (stored in "
                    f"{run.store_seconds:.1f} s); server CPU {run.cores:.2f} cores, "
                    f"{run.server_cpu * 1000 / run.messages:.1f} ms a message",
                    _verdict(run.rate >= GOAL_INDEX_RATE),
                )
            )
        if result.windows:
            idle = [w for w in result.windows if not w.busy]
            busy = [w for w in result.windows if w.busy]
            idle_p99 = statistics.median(w.latencies.p99 for w in idle)
            busy_p99 = statistics.median(w.latencies.p99 for w in busy)
            early = sum(1 for w in busy if w.pending_at_end == 0)
            pending = "pending throughout" if not early else f"indexing finished early in {early}"
            out.append(
                _row(
                    f"3 Complete p99 while indexing <= {GOAL_BUSY_P99:g}x idle",
                    f"{busy_p99 / idle_p99:.2f}x: busy {_ms(busy_p99)} ms, idle {_ms(idle_p99)} ms "
                    f"(median p99 of {len(busy)} windows of {plan.window_calls}; {pending})",
                    _verdict(busy_p99 / idle_p99 <= GOAL_BUSY_P99),
                )
            )
            for name, group in (("idle", idle), ("busy", busy)):
                out.append(
                    _row(
                        f"  {name} windows",
                        "p99 "
                        + " ".join(_ms(w.latencies.p99) for w in group)
                        + " ms; p50 "
                        + " ".join(_ms(w.latencies.p50) for w in group)
                        + " ms; pending "
                        + " ".join(f"{w.pending_at_start}->{w.pending_at_end}" for w in group)
                        + "; calls started with nothing pending "
                        + " ".join(f"{w.quiet_calls}" for w in group)
                        + "; server CPU "
                        + " ".join(f"{w.server_cores:.2f}" for w in group),
                    )
                )
        if result.with_memory is not None and result.without_memory is not None:
            on_mem, off_mem = result.with_memory, result.without_memory
            more_startup = (on_mem.startup - off_mem.startup) / _MIB
            more_loaded = (on_mem.loaded - off_mem.loaded) / _MIB
            out.append(
                _row(
                    "4 server RSS with the model (reported)",
                    f"startup {on_mem.startup / _MIB:.0f} MiB with --memory, "
                    f"{off_mem.startup / _MIB:.0f} without ({more_startup:+.0f}); loaded "
                    f"{on_mem.loaded / _MIB:.0f} and {off_mem.loaded / _MIB:.0f} MiB "
                    f"({more_loaded:+.0f})",
                    "reported",
                )
            )
        if result.breakdown:
            pieces = ", ".join(f"{name} {ms:.2f}" for name, ms in result.breakdown.items())
            out.append(
                f"where a search's time goes (ms, median of {plan.breakdown_queries} queries in "
                f"the bench process, {result.passages} passages): {pieces}; the indexer's "
                f"embedding alone, in batches: {result.embed_ms:.2f} ms a passage "
                f"({result.embedded} passages)"
            )
        out.append("")
    return "\n".join(out).rstrip()


__all__ = ["FULL", "QUICK", "Plan", "Result", "databases", "describe", "format_report", "measure"]
