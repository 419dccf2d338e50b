"""SQLite's writes, on the loop with their commits on a thread, and on the writer thread:
concurrent writes commit in groups, and a unit that fails in a group leaves no trace while
the rest of its group is kept."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from memori_server.domain import Attribution
from memori_server.errors import AttributionMismatch, SessionNotFound
from memori_server.storage import statements as sql
from memori_server.storage.records import NewMessage, SessionRecord
from memori_server.storage.sqlite_loop_commits import SqliteLoopCommits
from memori_server.storage.sqlite_writer import SqliteWriter
from memori_server.storage.turn_store import LoadedSession
from memori_server.storage.units import Op, Unit, Work, ops

from tests.storage_support import Stores

TENANT = "default"
IDLE = 86400.0


@pytest.fixture(params=["loop", "loop, synchronous=normal", "writer thread"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Small writes run on the loop and commit on a thread (with synchronous=normal, on the
    loop); without fast paths, whole on the writer thread."""
    opened = Stores(
        f"sqlite:///{tmp_path / 'writer.db'}",
        fast_paths=request.param != "writer thread",
        sqlite_synchronous="normal" if "normal" in request.param else "full",
    )
    yield opened
    opened.close()


def _committer(stores: Stores) -> SqliteLoopCommits | SqliteWriter:
    database = stores.database
    committer = database._loop_commits if database._policy._fast_paths else database._writer
    assert committer is not None
    return committer


def _who() -> Attribution:
    return Attribution(f"user-{uuid.uuid4().hex[:8]}", "agent")


class Refused(Exception):
    """A unit's own failure, after it wrote."""


def _writes_then_fails(stores: Stores, session_id: str, owner: Attribution) -> Unit[None]:
    key = sql.owner(TENANT, session_id, owner)
    yield ops(Op(stores.database.statements.insert_session, {**key, "now": datetime.now(UTC)}))
    raise Refused(session_id)


def test_concurrent_writes_share_commits_and_a_failed_unit_leaves_no_trace(
    stores: Stores,
) -> None:
    owner, stranger = _who(), _who()
    foreign = stores.run(stores.sessions.reset(TENANT, stranger))
    committer = _committer(stores)
    commits_before = committer.commits

    async def turn(index: int) -> object:
        if index % 10 == 3:  # another's session, found taken only by the write: refused
            loaded = LoadedSession(
                session_id=foreign.id,
                record=None,
                from_current=False,
                is_current=False,
                history=[],
                from_session_start=True,
                call_start=datetime.now(UTC),
            )
        else:
            loaded = await stores.turns.load(
                TENANT,
                owner,
                str(uuid.uuid4()),
                idle_seconds=IDLE,
                token_budget=8000,
                min_messages=1,
            )
        messages = [NewMessage("user", f"q{index}", token_count=3), NewMessage("assistant", "a")]
        return await stores.turns.store_turn(
            TENANT, owner, loaded, messages, idle_seconds=IDLE, completion=None
        )

    async def failing(index: int) -> None:
        work: Work[None] = Work(
            lambda: _writes_then_fails(stores, f"doomed-{index}", owner), writes=True
        )
        await stores.database.run(work)

    async def everything() -> list[object]:
        calls = [turn(n) for n in range(60)] + [failing(n) for n in range(6)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = stores.run(everything())
    stored = [r for r in results[:60] if isinstance(r, SessionRecord)]
    refused = [r for r in results[:60] if isinstance(r, BaseException)]
    assert len(stored) == 54
    assert all(isinstance(r, AttributionMismatch) for r in refused), refused
    assert all(isinstance(r, Refused) for r in results[60:])
    # Grouped: fewer commits than units (the loads let the writes arrive together).
    assert 0 < committer.commits - commits_before < 60
    for record in stored:
        assert stores.run(stores.sessions.get(TENANT, record.id)).message_count == 2
    for index in range(6):
        with pytest.raises(SessionNotFound):
            stores.run(stores.sessions.get(TENANT, f"doomed-{index}"))
    assert stores.run(stores.sessions.get(TENANT, foreign.id)).message_count == 0
