"""Run the benchmarks: `./dev bench [--quick] [--only NAME] [--database-url postgresql://...]`.

- session_get: Get(session_id) against a bare no-op RPC (see bench/session_get.py);
- chat_complete: ChatService.Complete against the same request sent straight to the upstream
  with the openai SDK, sequential latency and concurrent throughput (bench/chat_complete.py);
- client_overhead: `create` through the Python client (memori_client) against the same
  Complete RPC through the raw stub (bench/client_overhead.py);
- ts_client_overhead: the same for the TypeScript client (@memori-grpc/client) against the
  raw Connect stub, in Node.js (bench/ts_client_overhead.py);
- fuzz: 10,000 property-based fuzz cases over every RPC, counted by status code; exits 1 on
  any INTERNAL/UNKNOWN or when the server stops serving (bench/fuzz.py);
- health_under_load: Health/Check latency while four callers resend 2,048-message histories
  (bench/health_under_load.py);
- data_lifecycle: request-id record bytes per streamed token (now and before), SQLite's
  synchronous=full against normal, and erasing an entity of 100,000 messages
  (bench/data_lifecycle.py);
- hot_path: the server's CPU per completion and throughput with 32 Python-client callers
  (each its own Memori and AsyncOpenAI, with the SDK's default retries: request ids) against
  32 direct callers, at 0, 10 and about 300 messages in the window, and at about 300 without
  request ids (bench/hot_path.py);
- memory_perf: long-term memory's goals: what recall adds to Complete for an entity of 10,000
  messages, the indexing rate, Complete p99 while indexing, the server's memory with the
  model (servers of its own with --memory, each on a fresh database; bench/memory_perf.py);
- memory_quality: evidence recall of MemoryService.Search within 700 tokens and at 10 results,
  lexical-only, dense-only and hybrid side by side, on generated multi-session conversations
  with known evidence (the server in this process on a database of its own, no upstream;
  bench/memory_quality.py, bench/memory_data.py).

Each database backend gets one server process (`bench.bench_server`, the real app) and one
stand-in upstream process (`python -m standin_upstream`); the load comes from this process.
They run against a fresh temporary SQLite file and, when a PostgreSQL URL is given
(`--database-url` or MEMORI_TEST_DATABASE_URL), against a fresh `memori_bench_<random>`
database created next to it and dropped afterwards. `--quick` is a smoke run (a few seconds
per database) whose figures mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from bench import (
    chat_complete,
    client_overhead,
    data_lifecycle,
    fuzz,
    health_under_load,
    hot_path,
    memory_perf,
    memory_quality,
    session_get,
    ts_client_overhead,
)
from bench.launch import (
    StandinProcess,
    bench_server,
    postgres_admin_url,
    postgres_database,
    sqlite_database,
)
from tests.server_process import ServerProcess

BENCHMARKS = (
    "session_get",
    "chat_complete",
    "client_overhead",
    "ts_client_overhead",
    "fuzz",
    "health_under_load",
    "data_lifecycle",
    "hot_path",
    "memory_perf",
    "memory_quality",
)


def _databases(
    workdir: Path, admin_url: str | None
) -> Iterator[tuple[str, AbstractContextManager[str]]]:
    yield "sqlite", sqlite_database(workdir)
    if admin_url is not None:
        yield "postgresql", postgres_database(admin_url)


@contextmanager
def _server(
    backend: str,
    database_url: str,
    upstream_base_url: str,
    profile: Path | None,
    time_layers: bool,
    history_token_budget: int | None,
) -> Iterator[ServerProcess]:
    extra = [
        "--upstream-base-url",
        upstream_base_url,
        *(["--profile", str(profile)] if profile else []),
        *(["--time-layers"] if time_layers else []),
        *(
            ["--history-token-budget", str(history_token_budget)]
            if history_token_budget is not None
            else []
        ),
    ]
    server = bench_server(database_url, *extra)
    try:
        with server:
            yield server
    finally:
        if time_layers:
            for line in server.lines:
                if "layer timing" in line:
                    print(f"{backend}: {line.split(' layer timing ', 1)[1]}")
        if profile is not None and profile.exists():
            print(f"{backend}: server profile")
            stats = pstats.Stats(str(profile))
            # Coroutine resumptions count as calls, so ncalls is a multiple of the RPC count.
            stats.sort_stats("cumulative").print_stats(
                r"memori_server|sqlalchemy|sqlite3|psycopg|registration|openai|httpx|tiktoken",
                30,
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable; default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: few calls and short phases (used by the tests)",
    )
    parser.add_argument(
        "--calls", type=int, help="session_get: measured calls per RPC kind (3000; quick 40)"
    )
    parser.add_argument(
        "--warmup", type=int, help="session_get: unmeasured calls per RPC kind (300; quick 5)"
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL admin URL (else "
        "MEMORI_TEST_DATABASE_URL; SQLite only when neither is set)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the server and print its top functions (slows it down)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="hot_path: sample the server with py-spy during each window of memori calls, "
        "into DIR (summarize with python -m bench.stacks; docs/profiling.md)",
    )
    parser.add_argument(
        "--time-layers",
        action="store_true",
        help="print server-side timings of the Get and Complete handlers and their layers",
    )
    parser.add_argument(
        "--history-token-budget",
        type=int,
        metavar="TOKENS",
        help="chat_complete: the server's history budget (default: the server's, 8000)",
    )
    parser.add_argument(
        "--fuzz-cases",
        type=int,
        metavar="N",
        help=f"fuzz: cases per database ({fuzz.CASES}; quick {fuzz.QUICK_CASES})",
    )
    parser.add_argument(
        "--fuzz-seed",
        type=int,
        metavar="N",
        help="fuzz: other cases than the fixed ones, chosen by this seed",
    )
    parser.add_argument(
        "--fail-above",
        type=float,
        metavar="RATIO",
        help="exit 1 when a Get/no-op p50 ratio exceeds RATIO",
    )
    parser.add_argument(
        "--memory-details",
        type=Path,
        metavar="FILE",
        help="memory_quality: write each question's evidence, recall and returned memories "
        "per mode and setting to FILE (JSON)",
    )
    args = parser.parse_args(argv)
    selected = set(args.only or BENCHMARKS)
    calls = args.calls if args.calls is not None else 40 if args.quick else 3000
    warmup = args.warmup if args.warmup is not None else 5 if args.quick else 300
    plan = chat_complete.QUICK if args.quick else chat_complete.FULL
    fuzz_cases = args.fuzz_cases or (fuzz.QUICK_CASES if args.quick else fuzz.CASES)

    get_results: list[session_get.Result] = []
    chat_results: list[chat_complete.Result] = []
    client_results: list[client_overhead.Result] = []
    ts_client_results: list[client_overhead.Result] = []
    fuzz_results: list[fuzz.Result] = []
    health_results: list[health_under_load.Result] = []
    health_plan = health_under_load.QUICK if args.quick else health_under_load.FULL
    lifecycle_results: list[data_lifecycle.Result] = []
    hot_results: list[hot_path.Result] = []
    hot_plan = hot_path.QUICK if args.quick else hot_path.FULL
    lifecycle_plan = data_lifecycle.QUICK if args.quick else data_lifecycle.FULL
    memory_results: list[memory_perf.Result] = []
    admin_url = postgres_admin_url(args.database_url)
    quality_results: list[memory_quality.Result] = []
    quality_plan = memory_quality.QUICK if args.quick else memory_quality.FULL
    # memory_perf and memory_quality start servers of their own
    shared = selected - {"memory_perf", "memory_quality"}
    with tempfile.TemporaryDirectory(prefix="memori-bench-") as tmp:
        workdir = Path(tmp)
        for backend, database in _databases(workdir, admin_url) if shared else ():
            profile = workdir / f"{backend}.prof" if args.profile else None
            with database as url:
                seeded = None
                erased_entity = None
                hot_sessions = None
                if "hot_path" in selected:
                    print(f"hot_path: {backend}: seeding the sessions", flush=True)
                    hot_sessions = asyncio.run(hot_path.seed(url, hot_plan.callers))
                if "data_lifecycle" in selected:
                    print(f"data_lifecycle: {backend}: seeding the entity to erase", flush=True)
                    erased_entity = asyncio.run(
                        data_lifecycle.seed_entity(url, lifecycle_plan.erase_messages)
                    )
                if "chat_complete" in selected:
                    print(f"chat_complete: {backend}: seeding the sessions", flush=True)
                    seeded = asyncio.run(chat_complete.seed(url, plan))
                with (
                    StandinProcess() as upstream,
                    _server(
                        backend,
                        url,
                        upstream.base_url,
                        profile,
                        args.time_layers,
                        args.history_token_budget,
                    ) as server,
                ):
                    if "session_get" in selected:
                        print(
                            f"session_get: {backend} at {server.target}, {calls} calls "
                            f"of each kind after {warmup} warm-up calls",
                            flush=True,
                        )
                        get_results.append(
                            asyncio.run(session_get.measure(server.target, backend, calls, warmup))
                        )
                    if "client_overhead" in selected:
                        print(
                            f"client_overhead: {backend} at {server.target}, {calls} calls "
                            f"per path after {warmup} warm-up calls",
                            flush=True,
                        )
                        client_results.extend(
                            client_overhead.measure(server.target, backend, calls, warmup)
                        )
                    if "ts_client_overhead" in selected:
                        print(
                            f"ts_client_overhead: {backend} at {server.target}, {calls} calls "
                            f"per path after {warmup} warm-up calls",
                            flush=True,
                        )
                        ts_client_results.append(
                            ts_client_overhead.measure(server.target, backend, calls, warmup)
                        )
                    if "fuzz" in selected:
                        print(f"fuzz: {backend} at {server.target}, {fuzz_cases} cases", flush=True)
                        fuzz_results.append(
                            fuzz.measure(
                                server.target,
                                upstream.control_url,
                                backend,
                                fuzz_cases,
                                server.lines,
                                args.fuzz_seed,
                            )
                        )
                    if "health_under_load" in selected:
                        print(
                            f"health_under_load: {backend} at {server.target}; "
                            f"{health_plan.describe()}",
                            flush=True,
                        )
                        health_results.append(
                            health_under_load.measure(server.target, backend, health_plan)
                        )
                    if hot_sessions is not None:
                        print(
                            f"hot_path: {backend} at {server.target}; "
                            f"{hot_path.describe(hot_plan)}",
                            flush=True,
                        )
                        hot_results.extend(
                            hot_path.measure(
                                server.target,
                                upstream.base_url,
                                upstream.control_url,
                                server.process.pid,
                                backend,
                                hot_sessions,
                                hot_plan,
                                args.py_spy,
                            )
                        )
                    if erased_entity is not None:
                        print(f"data_lifecycle: {backend} at {server.target}", flush=True)
                        lifecycle_results.append(
                            data_lifecycle.measure(
                                server.target,
                                upstream.control_url,
                                upstream.base_url,
                                backend,
                                url,
                                erased_entity,
                                lifecycle_plan,
                            )
                        )
                    if seeded is not None:
                        print(
                            f"chat_complete: {backend} at {server.target}, upstream "
                            f"{upstream.base_url}; {chat_complete.describe(plan)}",
                            flush=True,
                        )
                        chat_results.append(
                            asyncio.run(
                                chat_complete.measure(
                                    server.target,
                                    upstream.base_url,
                                    upstream.control_url,
                                    backend,
                                    seeded,
                                    plan,
                                )
                            )
                        )
        if "memory_perf" in selected:
            plan_memory = memory_perf.QUICK if args.quick else memory_perf.FULL
            with StandinProcess() as upstream:
                for backend, fresh in memory_perf.databases(workdir, admin_url):
                    print(f"memory_perf: {backend}; {memory_perf.describe(plan_memory)}")
                    memory_results.append(
                        memory_perf.measure(backend, fresh, upstream.base_url, plan_memory)
                    )
        if "memory_quality" in selected:
            (workdir / "memory_quality").mkdir()
            for backend, database in _databases(workdir / "memory_quality", admin_url):
                with database as url:
                    print(
                        f"memory_quality: {backend}; {memory_quality.describe(quality_plan)}",
                        flush=True,
                    )
                    quality_results.append(
                        asyncio.run(memory_quality.measure(url, backend, quality_plan))
                    )
    if get_results:
        print()
        print(session_get.format_table(get_results))
    if chat_results:
        print()
        print(chat_complete.format_tables(chat_results))
    if client_results:
        print()
        print(client_overhead.format_table(client_results))
    if ts_client_results:
        print()
        print(ts_client_overhead.format_table(ts_client_results))
    if fuzz_results:
        print()
        print(fuzz.format_report(fuzz_results))
    if health_results:
        print()
        print(health_under_load.format_table(health_results))
    if hot_results:
        print()
        print(hot_path.format_table(hot_results))
    if lifecycle_results:
        print()
        print(data_lifecycle.format_report(lifecycle_results))
    if memory_results:
        print()
        print(memory_perf.format_report(memory_results))
    if quality_results:
        print()
        print(memory_quality.format_report(quality_results))
        if args.memory_details is not None:
            memory_quality.write_details(args.memory_details, quality_results)
    if args.fail_above is not None and any(r.p50_ratio > args.fail_above for r in get_results):
        return 1
    return 0 if all(result.passed for result in fuzz_results) else 1


if __name__ == "__main__":
    sys.exit(main())
