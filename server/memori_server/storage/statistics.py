"""PostgreSQL statistics for tables that were filled without them (a restore, a bulk import).

`pg_restore` and bulk loads leave tables that were never analyzed, and autovacuum analyzes
them only on its next pass (a minute or more later). Until then PostgreSQL plans them as
nearly empty: measured on 450 sessions, a session was found through the wrong index,
scanning every session of its tenant, and the current-session pointer by scanning the
tenant's pointers; reading a session and its history took 0.57 ms instead of 0.25, and it
grows with the tables. So a server analyzes its never-analyzed tables before it serves. An
empty table costs nothing to analyze, and autovacuum keeps the statistics from then on. A
table whose lock is held (a VACUUM, an index build) is not waited for beyond a second: it is
left to autovacuum, the others are analyzed, and the log says which.
SQLite keeps no statistics unless asked and plans these statements well without them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import OperationalError

from memori_server.storage.database import Database
from memori_server.storage.tables import metadata

_NEVER_ANALYZED = text(
    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
    "AND last_analyze IS NULL AND last_autoanalyze IS NULL AND relname IN :names "
    "ORDER BY relname"
).bindparams(bindparam("names", expanding=True))


# Bounds on what a start may wait for: ANALYZE samples 30,000 rows a table (0.09 s for
# 100,000 messages here), but waits for a VACUUM or an index build holding its lock.
LOCK_TIMEOUT = "1s"
STATEMENT_TIMEOUT = "60s"


@dataclass(frozen=True)
class Analyzed:
    tables: list[str]
    skipped: list[str]
    """Tables whose lock was held, or whose ANALYZE ran out of time: left to autovacuum."""


def _analyze_never_analyzed(connection: Connection) -> Analyzed:
    names = list(metadata.tables)
    tables = list(connection.execute(_NEVER_ANALYZED, {"names": names}).scalars())
    if tables:
        connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        connection.execute(text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
    analyzed, skipped = [], []
    for table in tables:
        try:
            with connection.begin_nested():  # a table given up on keeps the others' statistics
                connection.execute(text(f'ANALYZE "{table}"'))  # names from our own metadata
        except OperationalError:  # lock_timeout or statement_timeout
            skipped.append(table)
        else:
            analyzed.append(table)
    return Analyzed(analyzed, skipped)


async def analyze_never_analyzed(database: Database) -> Analyzed:
    """ANALYZE each of the server's tables PostgreSQL has no statistics for."""
    if database.dialect != "postgresql":
        return Analyzed([], [])
    return await database.with_connection(_analyze_never_analyzed)


__all__ = ["Analyzed", "analyze_never_analyzed"]
