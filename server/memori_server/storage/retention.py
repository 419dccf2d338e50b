"""Retention: idle sessions deleted one at a time, and old erasure records forgotten.

Each idle session is deleted whole in a transaction of its own, after locking it and checking
again that it is still idle: a session resumed at that moment is kept, and never loses part
of its history. One session per transaction keeps SQLite's write lock short.
"""

from __future__ import annotations

from datetime import datetime

from memori_server.storage import statements as sql
from memori_server.storage.store import Store
from memori_server.storage.units import Fetch, Op, Unit, Work, ops


class RetentionStore(Store):
    async def idle_sessions(self, cutoff: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, session id) of sessions last active before `cutoff`, oldest first."""

        def unit() -> Unit[list[tuple[str, str]]]:
            (rows,) = yield ops(
                Op(self._sql.idle_sessions, {"cutoff": cutoff, "limit": limit}, Fetch.ALL),
                commit=True,
            )
            return [(row.tenant_id, row.id) for row in rows]

        return await self._db.run(Work(unit, writes=False, heavy=True))

    async def delete_idle(self, tenant_id: str, session_id: str, cutoff: datetime) -> int | None:
        """Delete the session if it is still idle since `cutoff`; returns the messages deleted
        with it, or None when it was active meanwhile (or is gone)."""
        key = {"tenant_id": tenant_id, "session_id": session_id}

        def unit() -> Unit[int | None]:
            (idle,) = yield ops(
                Op(self._sql.lock_idle_session, {**key, "cutoff": cutoff}, Fetch.ONE)
            )
            if idle is None:
                return None
            deleted, *_ = yield ops(*sql.delete_session_ops(self._sql, key), commit=True)
            return int(deleted)

        return await self._db.run(Work(unit, writes=True, heavy=True))

    async def forget_erasures(self, before: datetime) -> int:
        """Drop erasure records older than any call could run: they only guard calls that
        began before their erasure."""

        def unit() -> Unit[int]:
            (purged,) = yield ops(
                Op(self._sql.purge_erasures, {"before": before}, Fetch.ROWCOUNT), commit=True
            )
            return int(purged)

        return await self._db.run(Work(unit, writes=True, heavy=True))


__all__ = ["RetentionStore"]
