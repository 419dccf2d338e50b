"""PostgreSQL statistics for tables that were filled without them (a restore, a bulk import).

`pg_restore` and bulk loads leave tables that were never analyzed, and autovacuum analyzes
them only on its next pass (a minute or more later). Until then PostgreSQL plans them as
nearly empty: measured on 450 sessions, a session was found through the wrong index,
scanning every session of its tenant, and the current-session pointer by scanning the
tenant's pointers; reading a session and its history took 0.57 ms instead of 0.25, and it
grows with the tables. So a server analyzes its never-analyzed tables before it serves. An
empty table costs nothing to analyze, and autovacuum keeps the statistics from then on.
SQLite keeps no statistics unless asked and plans these statements well without them.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from memori_server.storage.database import Database
from memori_server.storage.tables import metadata

_NEVER_ANALYZED = text(
    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
    "AND last_analyze IS NULL AND last_autoanalyze IS NULL AND relname IN :names "
    "ORDER BY relname"
).bindparams(bindparam("names", expanding=True))


def _analyze_never_analyzed(connection: Connection) -> list[str]:
    names = list(metadata.tables)
    tables = list(connection.execute(_NEVER_ANALYZED, {"names": names}).scalars())
    for table in tables:
        connection.execute(text(f'ANALYZE "{table}"'))  # names from our own metadata
    return tables


async def analyze_never_analyzed(database: Database) -> list[str]:
    """ANALYZE each of the server's tables PostgreSQL has no statistics for; their names."""
    if database.dialect != "postgresql":
        return []
    return await database.with_connection(_analyze_never_analyzed)


__all__ = ["analyze_never_analyzed"]
