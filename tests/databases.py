"""Scratch databases: a temp SQLite file always, a fresh PostgreSQL database when configured.

Shared by the tests and the benchmarks (`bench/`), so neither ever touches real data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

PG_ENV = "MEMORI_TEST_DATABASE_URL"


def postgres_admin_url(explicit: str | None = None) -> str | None:
    """`explicit`, else MEMORI_TEST_DATABASE_URL, else None (SQLite only)."""
    return explicit or os.environ.get(PG_ENV) or None


def _admin(admin_url: str, statement: str) -> None:
    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(statement.encode())


@contextmanager
def fresh_postgres_database(admin_url: str, prefix: str = "memori_test") -> Iterator[str]:
    """CREATE a uniquely named database next to `admin_url`'s and DROP it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'memori.db'}"
