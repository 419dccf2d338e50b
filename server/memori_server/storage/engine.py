"""Turn the plain database URL users configure into a tuned async engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql"}
WRITE_OPTION = "memori_write"


def async_url(database_url: str) -> URL:
    """`sqlite:///x.db` / `postgresql://...` (or with an explicit async driver) → async URL."""
    try:
        url = make_url(database_url)
    except Exception as error:  # sqlalchemy raises ArgumentError with a terse text
        raise ValueError(f"database URL {mask(database_url)!r} is not a valid URL") from error
    backend = url.drivername.partition("+")[0]
    backend = _ALIASES.get(backend, backend)
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://user@host/db"
        )
    driver = url.drivername.partition("+")[2]  # get_driver_name() fills in a default
    if driver and driver not in ("aiosqlite", "asyncpg", "pysqlite", "psycopg", "psycopg2"):
        raise ValueError(f"unsupported driver {driver!r}; give a plain {backend}:// URL")
    return url.set(drivername=_ASYNC_DRIVERS[backend])


def mask(database_url: str | URL) -> str:
    """The URL with its password hidden, for logs and errors."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def create_engine(database_url: str) -> AsyncEngine:
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_engine(url: URL) -> AsyncEngine:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writes.

    A deferred transaction that reads and then writes can fail at once with "database is
    locked" when another connection writes; taking the write lock up front makes writers queue.
    """
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
