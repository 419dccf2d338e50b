"""The server's CPU per completion, and throughput as apps run it (issue: the hot path).

32 callers, each with its own `Memori` and `openai.AsyncOpenAI` (the Python client, as an
app uses it, the SDK's default retries kept, so each call carries a request id), call
`chat.completions.create` in closed loops against a stand-in upstream
that answers after 50 ms; the baseline is 32 direct callers, each with its own
`AsyncOpenAI`, sending the app's request (the one new message) straight to the stand-in.
Measured at 0 (a new session each call), 10 and about 300 stored messages in the window the
server sends (sessions seeded before the server starts, 27 tokens a message: the default
budget of 8,000 tokens holds about 300):

- completions per second, memori against direct, in one run (phases alternate);
- the server process's CPU per completion, from /proc/<pid>/stat (user + system);
- this process's CPU per completion on each path, for information (the client's share);
- the server's CPU per completion over a direct request's CPU in the same run: steadier
  than the absolute figure when the machine's speed changes (it did by 2.5x from one day to
  the next here), though it still moves by about 15 % between runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
from memori_client import Memori
from memori_server.domain import Attribution
from memori_server.services.tenancy import DEFAULT_TENANT
from memori_server.storage.database import Database
from memori_server.storage.migrate import migrate
from memori_server.storage.records import NewMessage
from memori_server.storage.session_store import SessionStore

from bench import py_spy
from bench.chat_complete import sentences

MODEL = "gpt-4o-mini"
CALLERS = 32
UPSTREAM_DELAY = 0.05
WINDOWS = (0, 10, 300)
# The SDK's default retries (2), as apps keep them: every create carries a request id, so the
# server claims it before the upstream call and marks it done with the turn. The last row,
# at about 300 messages, is measured without them (max_retries=0, no request id), as this
# benchmark measured before 2026-11-30.
CASES = (*((stored, openai.DEFAULT_MAX_RETRIES) for stored in WINDOWS), (300, 0))
TOKENS_PER_MESSAGE = 27
SMALL_POOL = 80  # 10-message sessions per caller: each call finds (about) 10 stored
GOAL_CPU_MS = {"sqlite": 1.3, "postgresql": 1.8}  # at about 300 messages in the window
GOAL_THROUGHPUT = 0.8  # memori/direct on SQLite at 32 callers
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    window_seconds: float = 4.0
    ramp_seconds: float = 1.0
    callers: int = CALLERS


FULL = Plan()
QUICK = Plan(window_seconds=0.6, ramp_seconds=0.4, callers=4)


@dataclass(frozen=True)
class Phase:
    completions: int
    seconds: float
    server_cpu: float
    client_cpu: float

    @property
    def per_second(self) -> float:
        return self.completions / self.seconds

    def cpu_ms(self, which: str) -> float:
        cpu = self.server_cpu if which == "server" else self.client_cpu
        return cpu * 1000 / self.completions if self.completions else float("nan")


@dataclass(frozen=True)
class Result:
    backend: str
    stored: int
    memori: Phase
    direct: Phase
    request_ids: bool = True
    """The memori callers' apps kept the SDK's retries, so each call carried a request id."""

    @property
    def ratio(self) -> float:
        return self.memori.per_second / self.direct.per_second if self.direct.completions else 0

    @property
    def cpu_share(self) -> float:
        """The server's CPU per completion over a direct request's CPU, in the same run: the
        machine's speed divides out (the absolute goals move with it)."""
        return self.memori.cpu_ms("server") / self.direct.cpu_ms("client")


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def seed(database_url: str, callers: int) -> dict[int, list[list[str]]]:
    """Per window size, per caller, the sessions it uses (before the server starts)."""
    database = Database(database_url, 2)
    texts = sentences(997, seed=3)
    sessions: dict[int, list[list[str]]] = {0: [[] for _ in range(callers)]}
    try:
        await migrate(database)
        store = SessionStore(database)
        for stored, per_caller in ((10, SMALL_POOL), (300, 1)):
            sessions[stored] = []
            for caller in range(callers):
                owned = []
                for _ in range(per_caller):
                    session = await store.reset(
                        DEFAULT_TENANT, Attribution(_entity(caller), "bench")
                    )
                    history = [
                        NewMessage(
                            "user" if n % 2 == 0 else "assistant",
                            texts[(caller + n) % len(texts)],
                            token_count=TOKENS_PER_MESSAGE,
                        )
                        for n in range(stored)
                    ]
                    await store.append_messages(DEFAULT_TENANT, session.id, history)
                    owned.append(session.id)
                sessions[stored].append(owned)
    finally:
        await database.close()
    return sessions


def _entity(caller: int) -> str:
    return f"hot-path-caller-{caller}"


async def _closed_loop(
    callers: int,
    plan: Plan,
    call: Callable[[int, int], Awaitable[object]],
    server_pid: int,
    spy: Path | None = None,
) -> Phase:
    """`callers` closed loops; counts completions in the window after the ramp, and the
    server's and this process's CPU over that window (sampled by py-spy into `spy`)."""
    done: list[float] = []
    stop = False
    marks: dict[str, float] = {}

    async def caller(index: int) -> None:
        turn = 0
        while not stop:
            await call(index, turn)
            done.append(time.perf_counter())
            turn += 1

    async def mark_window() -> None:
        await asyncio.sleep(plan.ramp_seconds)
        sampling = py_spy.record(server_pid, plan.window_seconds, spy) if spy else None
        marks.update(start=time.perf_counter(), server=_process_cpu(server_pid), own=_own_cpu())
        await asyncio.sleep(plan.window_seconds)
        marks.update(
            end=time.perf_counter(), server_end=_process_cpu(server_pid), own_end=_own_cpu()
        )
        if sampling is not None and spy is not None:
            await asyncio.to_thread(py_spy.finish, sampling, spy)

    async with asyncio.TaskGroup() as group:
        for index in range(callers):
            group.create_task(caller(index))
        await mark_window()
        stop = True
    completions = sum(1 for at in done if marks["start"] <= at < marks["end"])
    return Phase(
        completions,
        marks["end"] - marks["start"],
        marks["server_end"] - marks["server"],
        marks["own_end"] - marks["own"],
    )


def _direct_clients(base_url: str, callers: int) -> list[openai.AsyncOpenAI]:
    return [
        openai.AsyncOpenAI(
            base_url=base_url,
            api_key="bench",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpx2Client(limits=httpx2.Limits(max_connections=4)),
        )
        for _ in range(callers)
    ]


def memori_apps(
    target: str, callers: int, max_retries: int
) -> tuple[list[openai.AsyncOpenAI], list[Memori]]:
    """One app per caller: its own `AsyncOpenAI` (with `max_retries`), registered with its
    own `Memori` for the caller's entity (`_entity`)."""
    apps = [
        _direct_clients("http://127.0.0.1:9/v1", 1)[0].with_options(max_retries=max_retries)
        for _ in range(callers)
    ]
    memoris = []
    for index, app in enumerate(apps):
        memori = Memori(target).attribution(_entity(index), "bench")
        memori.llm.register(app)
        memoris.append(memori)
    return apps, memoris


async def _measure_window(
    target: str,
    upstream_base_url: str,
    server_pid: int,
    backend: str,
    stored: int,
    sessions: list[list[str]],
    plan: Plan,
    max_retries: int,
    spy_dir: Path | None = None,
) -> Result:
    texts = sentences(500, seed=4)
    apps, memoris = memori_apps(target, plan.callers, max_retries)

    async def memori_call(index: int, turn: int) -> None:
        memori = memoris[index]
        if stored == 0:
            memori.reset_session()
        else:
            owned = sessions[index]
            memori.set_session(owned[turn % len(owned)])
        text = texts[(index * 31 + turn) % len(texts)]
        reply = await apps[index].chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        if reply.choices[0].message.content != f"echo: {text}":
            raise AssertionError(f"unexpected reply through memori: {reply.choices[0].message}")

    directs = _direct_clients(upstream_base_url, plan.callers)

    async def direct_call(index: int, turn: int) -> None:
        text = texts[(index * 31 + turn) % len(texts)]
        reply = await directs[index].chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        if reply.choices[0].message.content != f"echo: {text}":
            raise AssertionError("unexpected reply from the direct call")

    try:
        name = f"{backend}-{stored}-messages{'' if max_retries else '-no-request-id'}.txt"
        spy = spy_dir / name if spy_dir else None
        through_memori = await _closed_loop(plan.callers, plan, memori_call, server_pid, spy)
        direct = await _closed_loop(plan.callers, plan, direct_call, server_pid)
    finally:
        for opened in memoris:
            await opened.aclose()
        for client in [*apps, *directs]:
            await client.close()
    return Result(backend, stored, through_memori, direct, request_ids=max_retries > 0)


async def _set_delay(control_url: str, seconds: float) -> None:
    async with httpx2.AsyncClient() as http:
        reply = await http.post(f"{control_url}/_standin/delay", json={"seconds": seconds})
        reply.raise_for_status()


def measure(
    target: str,
    upstream_base_url: str,
    control_url: str,
    server_pid: int,
    backend: str,
    sessions: dict[int, list[list[str]]],
    plan: Plan,
    spy_dir: Path | None = None,
) -> list[Result]:
    """Every window size in turn; with `spy_dir`, py-spy samples the server during each
    window of memori calls (one file per backend and window size)."""

    async def run() -> list[Result]:
        await _set_delay(control_url, UPSTREAM_DELAY)
        try:
            return [
                await _measure_window(
                    target,
                    upstream_base_url,
                    server_pid,
                    backend,
                    stored,
                    sessions[stored],
                    plan,
                    max_retries,
                    spy_dir,
                )
                for stored, max_retries in CASES
            ]
        finally:
            await _set_delay(control_url, 0.0)

    return asyncio.run(run())


def describe(plan: Plan) -> str:
    return (
        f"{plan.callers} callers, each with its own Memori and AsyncOpenAI, against as many "
        f"direct AsyncOpenAI callers; upstream delay {UPSTREAM_DELAY * 1000:.0f} ms; phases "
        f"of {plan.window_seconds:g} s after {plan.ramp_seconds:g} s"
    )


def format_table(results: Sequence[Result]) -> str:
    lines = [
        "memori: each create with a request id (the SDK's default retries), but in the rows "
        "marked 'no id' (max_retries=0)",
        f"{'backend':<11} {'stored':>6}  {'path':<8} {'calls':>6} {'per s':>8} "
        f"{'server cpu ms/call':>19} {'client cpu ms/call':>19}",
        "-" * 84,
    ]
    for result in results:
        memori = "memori" if result.request_ids else "no id"
        for name, phase in ((memori, result.memori), ("direct", result.direct)):
            server = f"{phase.cpu_ms('server'):>19.3f}" if name != "direct" else f"{'':>19}"
            lines.append(
                f"{result.backend:<11} {result.stored:>6}  {name:<8} {phase.completions:>6} "
                f"{phase.per_second:>8.1f} {server} {phase.cpu_ms('client'):>19.3f}"
            )
        notes = [f"server cpu {result.cpu_share:.2f}x a direct request's"]
        if result.stored == 300 and result.request_ids:
            goal = GOAL_CPU_MS[result.backend]
            verdict = "meets" if result.memori.cpu_ms("server") <= goal else "MISSES"
            notes.append(f"server cpu {verdict} the goal of <= {goal} ms")
        if result.backend == "sqlite" and result.request_ids:
            verdict = "meets" if result.ratio >= GOAL_THROUGHPUT else "MISSES"
            notes.append(f"throughput {verdict} the goal of >= {GOAL_THROUGHPUT}x")
        lines.append(
            f"{result.backend:<11} {result.stored:>6}  {memori}/direct {result.ratio:>14.2f}x  "
            + "; ".join(notes)
        )
    return "\n".join(lines)
