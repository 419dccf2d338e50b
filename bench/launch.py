"""Start the benchmark's processes (server, stand-in upstream) and provide their databases."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.databases import fresh_postgres_database, postgres_admin_url
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

ROOT = Path(__file__).resolve().parent.parent
__all__ = [
    "StandinProcess",
    "bench_server",
    "postgres_admin_url",
    "postgres_database",
    "sqlite_database",
]


def bench_server(database_url: str, *args: str) -> ServerProcess:
    """`python -m bench.bench_server` on a free port (the real app plus a no-op RPC)."""
    return ServerProcess(
        database_url, *args, cwd=ROOT, program=(sys.executable, "-m", "bench.bench_server")
    )


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'bench.db'}"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh `memori_bench_<random>` database next to `admin_url`'s, dropped afterwards."""
    with fresh_postgres_database(admin_url, prefix="memori_bench") as url:
        _say_if_autovacuum_is_off(url)
        yield url


def _say_if_autovacuum_is_off(url: str) -> None:
    """Without autovacuum, the dead row versions every turn leaves (its session's row is
    updated) are never removed during the run: later figures pay for earlier ones."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SHOW autovacuum").fetchone()
    if row is not None and row[0] != "on":
        print(
            "postgresql: autovacuum is off on this server: dead row versions pile up during "
            "the run (PostgreSQL's default is on)",
            flush=True,
        )
