"""Run every benchmark: `./dev bench [--calls N] [--database-url postgresql://...]`.

Each benchmark runs against a fresh temporary SQLite file and, when a PostgreSQL URL is given
(`--database-url` or MEMORI_TEST_DATABASE_URL), against a fresh `memori_bench_<random>`
database created next to it and dropped afterwards.
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

from bench import session_get
from bench.launch import (
    bench_server,
    postgres_admin_url,
    postgres_database,
    sqlite_database,
)
from tests.server_process import ServerProcess


def _databases(
    workdir: Path, admin_url: str | None
) -> Iterator[tuple[str, AbstractContextManager[str]]]:
    yield "sqlite", sqlite_database(workdir)
    if admin_url is not None:
        yield "postgresql", postgres_database(admin_url)


@contextmanager
def _server(
    backend: str, database_url: str, profile: Path | None, time_layers: bool
) -> Iterator[ServerProcess]:
    extra = [
        *(["--profile", str(profile)] if profile else []),
        *(["--time-layers"] if time_layers else []),
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
                r"memori_server|sqlalchemy|sqlite3|psycopg|registration", 30
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per RPC kind")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured calls per RPC kind")
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
        "--time-layers",
        action="store_true",
        help="print server-side timings of the Get handler and SessionStore.get",
    )
    parser.add_argument(
        "--fail-above",
        type=float,
        metavar="RATIO",
        help="exit 1 when a Get/no-op p50 ratio exceeds RATIO",
    )
    args = parser.parse_args(argv)

    results: list[session_get.Result] = []
    with tempfile.TemporaryDirectory(prefix="memori-bench-") as tmp:
        workdir = Path(tmp)
        for backend, database in _databases(workdir, postgres_admin_url(args.database_url)):
            profile = workdir / f"{backend}.prof" if args.profile else None
            with database as url, _server(backend, url, profile, args.time_layers) as server:
                print(
                    f"session_get: {backend} at {server.target}, {args.calls} calls "
                    f"of each kind after {args.warmup} warm-up calls",
                    flush=True,
                )
                results.append(
                    asyncio.run(
                        session_get.measure(server.target, backend, args.calls, args.warmup)
                    )
                )
    print()
    print(session_get.format_table(results))
    if args.fail_above is not None and any(r.p50_ratio > args.fail_above for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
