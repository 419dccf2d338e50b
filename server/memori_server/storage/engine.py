"""Turn the plain database URL users configure into a tuned SQLAlchemy engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sqlalchemy_engine
from sqlalchemy.engine import URL, make_url

_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}
_ALIASES = {"postgres": "postgresql"}
_ACCEPTED_DRIVERS = {"pysqlite", "aiosqlite", "psycopg", "psycopg2", "asyncpg"}
WRITE_OPTION = "memori_write"  # SQLite: take the write lock at BEGIN
AUTOCOMMIT_OPTION = "memori_autocommit"  # SQLite, one-statement reads: no BEGIN/COMMIT


def engine_url(database_url: str) -> URL:
    """`sqlite:///x.db` / `postgresql://...` (any driver suffix) → the URL we connect with."""
    try:
        url = make_url(database_url)
    except Exception as error:  # sqlalchemy raises ArgumentError with a terse text
        raise ValueError(f"database URL {mask(database_url)!r} is not a valid URL") from error
    backend, _, driver = url.drivername.partition("+")
    backend = _ALIASES.get(backend, backend)
    if backend not in _DRIVERS:
        raise ValueError(
            f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://user@host/db"
        )
    if driver and driver not in _ACCEPTED_DRIVERS:
        raise ValueError(f"unsupported driver {driver!r}; give a plain {backend}:// URL")
    return url.set(drivername=_DRIVERS[backend])


def mask(database_url: str | URL) -> str:
    """The URL with its password hidden, for logs and errors."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def create_engine(database_url: str, pool_size: int, sqlite_synchronous: str = "full") -> Engine:
    url = engine_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size, sqlite_synchronous)
    return sqlalchemy_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        pool_timeout=10,
        hide_parameters=True,  # errors and logs never carry message content
        # Nothing prepared on the thread path (heavy units, migrations): each statement is
        # planned for the tables as they are, not as they were when psycopg prepared it
        # (see libpq_batches on plans kept from nearly empty tables).
        connect_args={"prepare_threshold": None},
    )


def _sqlite_engine(url: URL, pool_size: int, synchronous: str) -> Engine:
    """WAL, a busy timeout, BEGIN IMMEDIATE for writes and no BEGIN for one-statement reads.

    A deferred transaction that reads and then writes can fail at once with "database is
    locked" when another connection writes; taking the write lock up front makes writers queue.
    `synchronous=FULL` syncs the WAL at every commit, so an acknowledged turn survives a power
    loss; `secure_delete` overwrites deleted content, so erased text does not linger in free
    pages of the file.
    """
    if synchronous not in ("full", "normal"):
        raise ValueError(f"sqlite synchronous mode {synchronous!r}: use full or normal")
    engine = sqlalchemy_engine(
        url,
        pool_size=pool_size + 3,  # + those the loop's reads and writes and the writer keep
        max_overflow=0,
        connect_args={"timeout": 30, "check_same_thread": False},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous.upper()}",
            "secure_delete=ON",
            "busy_timeout=30000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(AUTOCOMMIT_OPTION):
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")

    return engine
