"""ChatService.Complete through memori against the same request sent straight to the upstream.

Three processes: the stand-in upstream (`python -m standin_upstream`, a test double that
echoes), the server (`bench.bench_server`: the real `MemoriServer`, pointed at the stand-in)
and this one, whose single asyncio event loop drives every path (async on both sides):

- memori: the generated `ChatServiceStub` on ONE `grpc.aio` insecure channel;
- direct: ONE `openai.AsyncOpenAI` (httpx2 pool of 512 connections, all kept alive, no
  retries) calling `chat.completions.create` with the app's own request (the one new user
  message), as the app would without memori: the goals are against it. The figure is what
  memory costs an app per call: session lookup, history load and assembly (and sending it),
  token counting, storing the turn, and the gRPC hop.
- direct full (for information): the same client sending, with `create`, exactly the body
  memori sent upstream (history included), read back from the stand-in's request log: what an
  app that replays its whole history itself (like the in-process Memori SDK) pays. `create`
  spends ~0.1 ms per message in its request transform, which the server avoids.
- raw full (for information): that body POSTed with `AsyncOpenAI.post(...,
  cast_to=ChatCompletion)`, which skips the transform: the floor of one upstream call
  carrying the history.

Overhead (upstream delay 0): sequential calls, in rounds of one block (50 calls) per path
and stored-history size, after warm-up rounds; even rounds run memori first, odd rounds last.
- a new session: every call names a session id the server has not seen, so the call
  creates the session in the transaction that stores its turn (1 message is sent).
- 100,000 stored messages: one session for the whole run (it grows by 2 per call, nothing
  next to 100,000). Only the newest turns within the server's token budget (default 8,000
  tokens, about 270 of the seeded messages) are sent, so the cost should stay flat.
- 10 stored messages: every call goes to a fresh session seeded with 10 messages, so each
  call really finds 10 stored messages (11 are sent). One session for the whole run would
  grow to the token budget and become the large case.
Sessions are seeded straight into the database before the server starts: messages alternate
user/assistant, ~20 words each, token_count 30. "msgs sent" is the mean number of messages
per upstream request (history plus the new one).

Throughput (upstream delay 50 ms): N concurrent callers (32, then 256) in closed loops,
alternating memori and direct phases. Each phase counts the calls completed in a window of a
few seconds after a ramp-up (the ramp-up and the draining of the last calls are not counted).
Each memori caller has its own attribution and a new session per phase, so histories stay
short (tens of messages); each direct caller sends the app's request (one new message).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import httpx2
import openai
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from memori_server.domain import Attribution
from memori_server.services.tenancy import DEFAULT_TENANT
from memori_server.storage.database import Database
from memori_server.storage.migrate import migrate
from memori_server.storage.records import NewMessage
from memori_server.storage.session_store import SessionStore
from openai.types.chat import ChatCompletion

from bench.session_get import Latencies

if TYPE_CHECKING:
    from memori_proto.v1.chat_pb2_grpc import ChatServiceAsyncStub

MODEL = "gpt-4o-mini"
TENANT = DEFAULT_TENANT  # the server runs without API keys: every call is this tenant's
PROCESS_ID = "bench"
SMALL_HISTORY = 10
LARGE_HISTORY = 100_000
SEED_BATCH = 5_000
SEED_TOKEN_COUNT = 30
SEED_WORDS = 20
NEW_SESSION = 0  # each call starts a session of its own (its id is new to the server)
# memori/direct at p50 (p99 is shown against the same figure), by backend and stored messages
GOAL_OVERHEAD = {
    ("sqlite", NEW_SESSION): 1.8,
    ("sqlite", SMALL_HISTORY): 1.8,
    ("sqlite", LARGE_HISTORY): 2.2,
    ("postgresql", NEW_SESSION): 2.5,
    ("postgresql", SMALL_HISTORY): 2.2,
    ("postgresql", LARGE_HISTORY): 2.2,
}
GOAL_THROUGHPUT = 0.7  # memori/direct completions per second
DIRECT_POOL = 512  # httpx2 connections of the direct client, all kept alive
CALL_TIMEOUT = 60.0
MEMORI, DIRECT, DIRECT_FULL, RAW = "memori", "direct", "direct full", "raw full"
PATHS = (MEMORI, DIRECT, DIRECT_FULL, RAW)


@dataclass(frozen=True)
class Plan:
    """How much to run. `QUICK` is a smoke test whose figures mean little."""

    block: int = 50
    """Sequential calls per path in one block of the overhead part."""
    rounds: int = 8
    """Measured rounds of the overhead part (each: one block per path and history size)."""
    warmup_rounds: int = 1
    window_seconds: float = 2.0
    """Counted part of one throughput phase."""
    ramp_seconds: float = 0.5
    """Uncounted start of each throughput phase."""
    phases: int = 2
    """Throughput phases per path and concurrency."""
    concurrency: tuple[int, ...] = (32, 256)
    upstream_delay: float = 0.05


FULL = Plan()
# The smoke run only proves every path answers; its ramp leaves a loaded machine time to
# open 256 connections before calls are counted.
QUICK = Plan(block=10, rounds=2, window_seconds=0.5, ramp_seconds=1.0, phases=1)

_VOCABULARY = (
    "the a my your our this that some every next last first new old big small good great "
    "quick short long early late week day morning evening meeting report project team "
    "customer order invoice account plan budget design release feature issue ticket change "
    "update question answer idea note draft review summary list table chart number price "
    "cost date time place trip flight hotel train car office home city country weather "
    "please could would should can will need want like think know see check send share "
    "book move cancel confirm compare explain help start finish fix add remove keep find "
    "about with for from into over after before during until since because while and but "
    "also still again only just really very quite maybe soon today tomorrow yesterday"
)
_WORDS = _VOCABULARY.split()


def sentences(count: int, seed: int) -> list[str]:
    """`count` sentence-like texts of about SEED_WORDS words (reproducible)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        words = rng.choices(_WORDS, k=rng.randint(SEED_WORDS - 3, SEED_WORDS + 3))
        texts.append(" ".join(words).capitalize() + rng.choice(".?!"))
    return texts


# -- seeding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededSession:
    session_id: str
    attribution: Attribution
    stored: int


@dataclass(frozen=True)
class Seeded:
    large: SeededSession
    small: list[SeededSession]
    """One per overhead call (warm-up rounds included)."""


async def _seed_session(
    store: SessionStore, entity_id: str, count: int, texts: Sequence[str]
) -> SeededSession:
    attribution = Attribution(entity_id, PROCESS_ID)
    session = await store.reset(TENANT, attribution)
    for start in range(0, count, SEED_BATCH):
        batch = [
            NewMessage(
                role="user" if index % 2 == 0 else "assistant",
                content=texts[index % len(texts)],
                token_count=SEED_TOKEN_COUNT,
            )
            for index in range(start, min(count, start + SEED_BATCH))
        ]
        await store.append_messages(TENANT, session.id, batch)
    return SeededSession(session.id, attribution, count)


async def seed(database_url: str, plan: Plan) -> Seeded:
    """Create the schema and the overhead part's sessions, before the server starts."""
    database = Database(database_url, 2)
    try:
        await migrate(database)
        store = SessionStore(database)
        texts = sentences(997, seed=1)
        tag = uuid.uuid4().hex[:8]
        large = await _seed_session(store, f"bench-{tag}-large", LARGE_HISTORY, texts)
        small = [
            await _seed_session(store, f"bench-{tag}-small-{call}", SMALL_HISTORY, texts)
            for call in range((plan.warmup_rounds + plan.rounds) * plan.block)
        ]
    finally:
        await database.close()
    return Seeded(large, small)


# -- the stand-in and the paths ------------------------------------------------------------


class Standin:
    """The stand-in's HTTP control API: its delay, and the request log the direct path replays."""

    def __init__(self, control_url: str) -> None:
        self._http = httpx2.AsyncClient(base_url=control_url, timeout=60)

    async def set_delay(self, seconds: float) -> None:
        response = await self._http.post("/_standin/delay", json={"seconds": seconds})
        response.raise_for_status()

    async def reset(self) -> None:
        """Forget the logged requests (the log would otherwise grow with every call)."""
        (await self._http.post("/_standin/reset")).raise_for_status()

    async def bodies(self) -> list[dict[str, Any]]:
        """The chat request bodies received since the last reset, oldest first."""
        response = await self._http.get("/_standin/requests")
        response.raise_for_status()
        return [record["body"] for record in response.json()]

    async def close(self) -> None:
        await self._http.aclose()


def direct_client(base_url: str) -> openai.AsyncOpenAI:
    """The direct path's client: pooled like the server's own upstream client, no retries."""
    limits = httpx2.Limits(max_connections=DIRECT_POOL, max_keepalive_connections=DIRECT_POOL)
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        timeout=CALL_TIMEOUT,
        http_client=openai.DefaultAsyncHttpx2Client(limits=limits),
    )


def _check_echo(completion: ChatCompletion) -> None:
    reply = completion.choices[0].message.content or ""
    if not reply.startswith("echo: "):
        raise AssertionError(f"unexpected reply from the direct call: {reply!r}")


class Paths:
    """One call on each path, each checking its answer."""

    def __init__(
        self, memori: ChatServiceAsyncStub, direct: openai.AsyncOpenAI, standin: Standin
    ) -> None:
        self.memori = memori
        self.direct = direct
        self.standin = standin
        self._texts = sentences(1000, seed=2)
        self._next = 0

    def request(self, session_id: str, attribution: Attribution) -> chat_pb2.CompleteRequest:
        """A new ~20-word user message in the session (the whole request)."""
        text = self._texts[self._next % len(self._texts)]
        self._next += 1
        return chat_pb2.CompleteRequest(
            session_id=session_id,
            attribution=common_pb2.Attribution(
                entity_id=attribution.entity_id, process_id=attribution.process_id
            ),
            request=chat_pb2.ChatCompletionRequest(
                model=MODEL,
                messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)],
            ),
        )

    async def memori_call(self, request: chat_pb2.CompleteRequest) -> chat_pb2.CompleteResponse:
        response = await self.memori.Complete(request, timeout=CALL_TIMEOUT)
        if response.session.id != request.session_id:
            raise AssertionError(f"stored in {response.session.id}, not {request.session_id}")
        reply = response.completion.choices[0].message.content
        if reply != "echo: " + request.request.messages[-1].content:
            raise AssertionError(f"unexpected reply through memori: {reply!r}")
        return response

    async def direct_call(self, body: dict[str, Any]) -> None:
        """The app's own request without memori: the new message of `body` alone."""
        await self.full_call({**body, "messages": body["messages"][-1:]})

    async def full_call(self, body: dict[str, Any]) -> None:
        extra = {key: value for key, value in body.items() if key not in ("model", "messages")}
        _check_echo(
            await self.direct.chat.completions.create(
                model=body["model"], messages=body["messages"], extra_body=extra or None
            )
        )

    async def raw_call(self, body: dict[str, Any]) -> None:
        _check_echo(await self.direct.post("/chat/completions", body=body, cast_to=ChatCompletion))


# -- overhead: sequential latency ----------------------------------------------------------


@dataclass(frozen=True)
class OverheadResult:
    backend: str
    stored: int
    latencies: dict[str, Latencies]
    """By path: MEMORI, DIRECT, DIRECT_FULL, RAW."""
    sent_messages: float

    def ratio(self, percentile: float, baseline: str = DIRECT) -> float:
        memori, other = self.latencies[MEMORI], self.latencies[baseline]
        return memori.percentile(percentile) / other.percentile(percentile)

    @property
    def goal(self) -> float:
        return GOAL_OVERHEAD[(self.backend, self.stored)]


@dataclass
class _Case:
    stored: int
    session: Callable[[int, int], SeededSession]
    """The session of a round's call."""
    samples: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    sent: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    """What memori sent upstream in its latest block: what the direct paths replay next."""


async def _memori_block(
    paths: Paths, case: _Case, round_: int, block: int, into: list[float]
) -> None:
    await paths.standin.reset()
    for call in range(block):
        session = case.session(round_, call)
        request = paths.request(session.session_id, session.attribution)
        start = time.perf_counter()
        response = await paths.memori_call(request)
        into.append(time.perf_counter() - start)
        if response.session.message_count < session.stored + 2:
            raise AssertionError(
                f"the server does not see the {session.stored} seeded messages of "
                f"{session.session_id} (another tenant?): {response.session.message_count}"
            )
    case.bodies = await paths.standin.bodies()
    if len(case.bodies) != block:
        raise AssertionError(f"{len(case.bodies)} upstream requests for {block} memori calls")


async def _replay_block(
    call: Callable[[dict[str, Any]], Awaitable[None]],
    bodies: list[dict[str, Any]],
    into: list[float],
) -> None:
    for body in bodies:
        start = time.perf_counter()
        await call(body)
        into.append(time.perf_counter() - start)


async def overhead(paths: Paths, backend: str, seeded: Seeded, plan: Plan) -> list[OverheadResult]:
    await paths.standin.set_delay(0.0)
    tag = uuid.uuid4().hex[:8]
    cases = [
        _Case(
            NEW_SESSION,
            lambda round_, call: SeededSession(
                str(uuid.uuid4()), Attribution(f"bench-{tag}-new-{round_}-{call}", PROCESS_ID), 0
            ),
        ),
        _Case(SMALL_HISTORY, lambda round_, call: seeded.small[round_ * plan.block + call]),
        _Case(LARGE_HISTORY, lambda _round, _call: seeded.large),
    ]
    for round_ in range(plan.warmup_rounds + plan.rounds):
        measured = round_ >= plan.warmup_rounds
        memori_first = round_ % 2 == 0  # round 0 must: the direct paths replay memori's bodies
        for case in cases if memori_first else cases[::-1]:
            samples = case.samples if measured else {p: [] for p in PATHS}
            calls = {DIRECT: paths.direct_call, DIRECT_FULL: paths.full_call, RAW: paths.raw_call}
            for path in PATHS if memori_first else PATHS[::-1]:
                if path == MEMORI:
                    await _memori_block(paths, case, round_, plan.block, samples[path])
                else:
                    await _replay_block(calls[path], case.bodies, samples[path])
            if measured:
                case.sent.extend(len(body["messages"]) for body in case.bodies)
    await paths.standin.reset()
    return [
        OverheadResult(
            backend,
            case.stored,
            {path: Latencies(path, samples) for path, samples in case.samples.items()},
            sum(case.sent) / len(case.sent),
        )
        for case in cases
    ]


# -- throughput: concurrent completions per second -----------------------------------------


@dataclass(frozen=True)
class Rate:
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.calls + other.calls, self.seconds + other.seconds)


@dataclass(frozen=True)
class ThroughputResult:
    backend: str
    concurrency: int
    memori: Rate
    direct: Rate

    @property
    def ratio(self) -> float:
        # A smoke run's short phase on a loaded machine may count no direct call at all.
        direct = self.direct.per_second
        return self.memori.per_second / direct if direct else float("nan")


async def _closed_loop(
    concurrency: int, ramp: float, window: float, call: Callable[[int, int], Awaitable[object]]
) -> Rate:
    """`concurrency` callers, each calling again as soon as its call returns.

    Counts the calls completed within `window` seconds after `ramp` seconds; then lets the
    calls in flight finish (uncounted).
    """
    completions: list[float] = []
    stop = False

    async def caller(index: int) -> None:
        turn = 0
        while not stop:
            await call(index, turn)
            completions.append(time.perf_counter())
            turn += 1

    async with asyncio.TaskGroup() as group:
        for index in range(concurrency):
            group.create_task(caller(index))
        start = time.perf_counter() + ramp
        await asyncio.sleep(ramp + window)
        stop = True
    end = start + window
    return Rate(sum(1 for at in completions if start <= at < end), window)


async def throughput(paths: Paths, backend: str, concurrency: int, plan: Plan) -> ThroughputResult:
    await paths.standin.set_delay(plan.upstream_delay)
    tag = uuid.uuid4().hex[:8]
    attributions = [Attribution(f"bench-{tag}-c{i}", PROCESS_ID) for i in range(concurrency)]
    bodies: list[dict[str, Any]] = []

    async def memori_phase() -> Rate:
        nonlocal bodies
        sessions = [str(uuid.uuid4()) for _ in attributions]  # created by their first call
        await paths.standin.reset()
        rate = await _closed_loop(
            concurrency,
            plan.ramp_seconds,
            plan.window_seconds,
            lambda i, _turn: paths.memori_call(paths.request(sessions[i], attributions[i])),
        )
        bodies = await paths.standin.bodies()
        return rate

    async def direct_phase() -> Rate:
        await paths.standin.reset()
        return await _closed_loop(
            concurrency,
            plan.ramp_seconds,
            plan.window_seconds,
            lambda i, turn: paths.direct_call(bodies[(i + turn * concurrency) % len(bodies)]),
        )

    memori = direct = Rate(0, 0.0)
    for phase in range(plan.phases):
        if phase % 2 == 0:  # memori first: the direct phase replays its bodies
            memori += await memori_phase()
            direct += await direct_phase()
        else:
            direct += await direct_phase()
            memori += await memori_phase()
    await paths.standin.reset()
    await paths.standin.set_delay(0.0)
    return ThroughputResult(backend, concurrency, memori, direct)


# -- the whole benchmark -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    overhead: list[OverheadResult]
    throughput: list[ThroughputResult]


def describe(plan: Plan) -> str:
    return (
        f"overhead: upstream delay 0 ms, {plan.rounds} rounds of {plan.block} sequential calls "
        f"per path and history size after {plan.warmup_rounds} warm-up round(s); throughput: "
        f"upstream delay {plan.upstream_delay * 1e3:g} ms, concurrency "
        f"{' and '.join(map(str, plan.concurrency))}, {plan.phases} phase(s) per path of "
        f"{plan.window_seconds:g} s counted after {plan.ramp_seconds:g} s; memori: grpc.aio "
        f"stub, one channel; direct: openai.AsyncOpenAI, {DIRECT_POOL} pooled connections"
    )


async def measure(
    target: str, upstream_base_url: str, control_url: str, backend: str, seeded: Seeded, plan: Plan
) -> Result:
    standin = Standin(control_url)
    try:
        async with (
            grpc.aio.insecure_channel(target) as channel,
            direct_client(upstream_base_url) as direct,
        ):
            paths = Paths(chat_pb2_grpc.ChatServiceStub(channel), direct, standin)
            overheads = await overhead(paths, backend, seeded, plan)
            rates = [await throughput(paths, backend, n, plan) for n in plan.concurrency]
    finally:
        await standin.close()
    return Result(overheads, rates)


def _verdict(ratio: float, goal: float) -> str:
    return "meets" if ratio <= goal else "MISSES"


def format_tables(results: Sequence[Result]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1e3:9.3f}"

    header = (
        f"{'backend':<12}{'stored':>8}  {'path':<15}{'calls':>7}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'mean ms':>10}{'msgs sent':>11}"
    )
    lines = [
        "chat_complete overhead: sequential Complete vs the app's request sent directly "
        "(direct), and vs memori's upstream body sent directly (direct full, raw full)"
    ]
    lines += [header, "-" * len(header)]
    for result in results:
        for row in result.overhead:
            for path, latencies in row.latencies.items():
                lines.append(
                    f"{row.backend:<12}{row.stored:>8}  {path:<15}{len(latencies.samples):>7}"
                    f"{ms(latencies.p50):>10}{ms(latencies.p99):>10}{ms(latencies.mean):>10}"
                    f"{row.sent_messages:>11.1f}"
                )
            for baseline in (DIRECT, DIRECT_FULL, RAW):
                name = f"{MEMORI}/{baseline}"
                mean = row.latencies[MEMORI].mean / row.latencies[baseline].mean
                line = (
                    f"{row.backend:<12}{row.stored:>8}  {name:<15}{'':>7}"
                    f"{row.ratio(50, baseline):>9.2f}x{row.ratio(99, baseline):>9.2f}x"
                    f"{mean:>9.2f}x"
                )
                if baseline == DIRECT:
                    line += (
                        f"{'':>11}   goal <= {row.goal}x: "
                        f"p50 {_verdict(row.ratio(50), row.goal)}, "
                        f"p99 {_verdict(row.ratio(99), row.goal)}"
                    )
                lines.append(line)
        lines.append("")
    header = f"{'backend':<12}{'callers':>8}  {'path':<15}{'calls':>7}{'seconds':>10}{'per s':>10}"
    lines += [
        "chat_complete throughput: concurrent Complete vs the app's requests sent directly",
        header,
        "-" * len(header),
    ]
    for result in results:
        for tp in result.throughput:
            for path, rate in ((MEMORI, tp.memori), (DIRECT, tp.direct)):
                lines.append(
                    f"{tp.backend:<12}{tp.concurrency:>8}  {path:<15}{rate.calls:>7}"
                    f"{rate.seconds:>10.2f}{rate.per_second:>10.1f}"
                )
            verdict = "meets" if tp.ratio >= GOAL_THROUGHPUT else "MISSES"
            lines.append(
                f"{tp.backend:<12}{tp.concurrency:>8}  {'memori/direct':<15}{'':>7}{'':>10}"
                f"{tp.ratio:>9.2f}x   {verdict} the goal of >= {GOAL_THROUGHPUT}x"
            )
        lines.append("")
    return "\n".join(lines).rstrip()
