"""SQLite's small writes on the event loop with their commits on a thread
(`storage/sqlite_loop_commits.py`): a write is acknowledged only once committed, writes that
arrive during a commit form the next transaction, and a failed commit or a broken statement
keeps nothing of its transaction."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from memori_server.domain import Attribution
from memori_server.errors import StorageUnavailable
from memori_server.storage import sqlite_loop_commits
from memori_server.storage import statements as sql
from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.records import NewMessage
from memori_server.storage.sqlite_loop_commits import CLAIM_LINGER, SqliteLoopCommits
from memori_server.storage.units import Op, Unit, Work, ops
from sqlalchemy import text

from tests.databases import sqlite_url
from tests.storage_support import Stores

TENANT = "default"
OWNER = Attribution("loop-commits-user", "agent")


class HeldCommits:
    """The commit thread's work, held at a gate before each commit; `fail` makes the next
    commit raise as a failing disk would, without committing."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.fail = False
        self.calls = 0

    def __call__(self, connection: Any) -> None:
        self.calls += 1
        if not self.gate.wait(10):
            raise AssertionError("a commit was held and never let through")
        if self.fail:
            self.fail = False
            raise sqlite3.OperationalError("disk I/O error")
        connection.execute("COMMIT")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    opened = Stores(sqlite_url(tmp_path), fast_paths=True)
    yield opened
    opened.close()


@pytest.fixture
def held(stores: Stores) -> Iterator[HeldCommits]:
    commits = _commits(stores)
    executor = HeldCommits()
    commits.commit_on_thread = executor
    yield executor
    executor.gate.set()


def _commits(stores: Stores) -> SqliteLoopCommits:
    commits = stores.database._loop_commits
    assert commits is not None
    return commits


def _insert_session(stores: Stores, session_id: str) -> Work[str]:
    def unit() -> Unit[str]:
        now = datetime.now(UTC)
        yield ops(
            Op(
                stores.database.statements.insert_session,
                {**sql.owner(TENANT, session_id, OWNER), "now": now},
            )
        )
        return session_id

    return Work(unit, writes=True)


def _stored(path: Path, session_ids: list[str]) -> set[str]:
    """The sessions another connection sees: what is committed."""
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT id FROM sessions").fetchall()
    return {session_id for (session_id,) in rows} & set(session_ids)


def _ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def _turns(loop_turns: int) -> None:
    for _ in range(loop_turns):
        await asyncio.sleep(0)


def test_a_write_is_acknowledged_only_once_committed_and_later_ones_join_the_next(
    stores: Stores, held: HeldCommits, tmp_path: Path
) -> None:
    database, path = stores.database, tmp_path / "memori.db"
    first, later = _ids(1), _ids(3)

    async def scenario() -> None:
        task = asyncio.ensure_future(database.run(_insert_session(stores, first[0])))
        await _turns(5)
        # Written on the loop, its commit held: not acknowledged, and not visible.
        assert not task.done()
        assert _stored(path, first) == set()
        waiting = [asyncio.ensure_future(database.run(_insert_session(stores, i))) for i in later]
        await _turns(5)
        assert not any(w.done() for w in waiting)  # the connection is busy committing
        held.gate.set()
        assert await task == first[0]
        assert _stored(path, first) == set(first)
        assert await asyncio.gather(*waiting) == later

    before = _commits(stores).commits
    stores.run(scenario())
    assert _stored(path, first + later) == set(first + later)
    assert _commits(stores).commits - before == 2  # the three waiting formed one


def test_a_cancelled_write_is_still_committed_and_the_others_waiting_are_answered(
    stores: Stores, held: HeldCommits, tmp_path: Path
) -> None:
    """Each write waits on a future of its own: cancelling one caller, whether its write ran
    in the transaction being committed or waits for the connection, neither cancels the
    commit nor leaves the other writes unanswered."""
    database, path = stores.database, tmp_path / "memori.db"
    committing, queued = _ids(2), _ids(2)

    async def scenario() -> None:
        ran = [asyncio.ensure_future(database.run(_insert_session(stores, i))) for i in committing]
        await _turns(5)  # both ran in one transaction; its commit is held
        waiting = [asyncio.ensure_future(database.run(_insert_session(stores, i))) for i in queued]
        await _turns(5)  # these wait for the connection
        ran[0].cancel()
        waiting[0].cancel()
        await _turns(5)
        assert ran[0].cancelled()
        assert waiting[0].cancelled()
        assert not ran[1].done()
        assert not waiting[1].done()
        held.gate.set()
        assert await ran[1] == committing[1]
        assert await waiting[1] == queued[1]

    stores.run(scenario())
    # The cancelled caller's write had run: it is committed with its transaction; the one
    # cancelled while waiting never ran.
    assert _stored(path, committing + queued) == {*committing, queued[1]}


def test_a_failed_commit_fails_every_write_of_its_transaction_and_keeps_none(
    stores: Stores, held: HeldCommits, tmp_path: Path
) -> None:
    database, path = stores.database, tmp_path / "memori.db"
    doomed, after = _ids(3), _ids(1)
    held.fail = True
    held.gate.set()

    async def together() -> list[object]:
        runs = [database.run(_insert_session(stores, i)) for i in doomed]
        return await asyncio.gather(*runs, return_exceptions=True)

    results = stores.run(together())
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    assert _stored(path, doomed) == set()
    # The connection was dropped with its transaction; the next write opens another.
    assert stores.run(database.run(_insert_session(stores, after[0]))) == after[0]
    assert _stored(path, after) == set(after)


def test_a_statement_that_breaks_the_transaction_fails_its_writes_and_later_ones_go_on(
    stores: Stores, tmp_path: Path
) -> None:
    database, path = stores.database, tmp_path / "memori.db"
    kept_before, broken_with, after = _ids(1), _ids(1), _ids(1)
    missing = CompiledStatement(
        text("INSERT INTO no_such_table VALUES (1)"), database.engine.dialect
    )

    def breaks() -> Unit[None]:
        yield ops(Op(missing, {}))

    async def same_turn() -> list[object]:
        return list(
            await asyncio.gather(
                database.run(_insert_session(stores, broken_with[0])),
                database.run(Work(breaks, writes=True)),
                database.run(_insert_session(stores, after[0])),
                return_exceptions=True,
            )
        )

    assert stores.run(database.run(_insert_session(stores, kept_before[0]))) == kept_before[0]
    first, broken, later = stores.run(same_turn())
    # The write that shared the broken transaction fails with it and is not kept; the one
    # after it ran in a new transaction.
    assert isinstance(first, StorageUnavailable)
    assert isinstance(broken, StorageUnavailable)
    assert later == after[0]
    assert _stored(path, kept_before + broken_with + after) == set(kept_before + after)


def test_a_held_write_lock_sends_the_write_to_the_writer_thread(
    stores: Stores, tmp_path: Path
) -> None:
    database, path = stores.database, tmp_path / "memori.db"
    session_id = _ids(1)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    writer = database._writer
    assert writer is not None
    before = (writer.commits, _commits(stores).commits)

    async def scenario() -> str:
        task = asyncio.ensure_future(database.run(_insert_session(stores, session_id[0])))
        await asyncio.sleep(0.2)  # the loop goes on while the writer thread waits
        assert not task.done()
        blocker.execute("COMMIT")
        return await task

    try:
        assert stores.run(scenario()) == session_id[0]
    finally:
        blocker.close()
    assert (writer.commits - before[0], _commits(stores).commits - before[1]) == (1, 0)
    assert _stored(path, session_id) == set(session_id)


def test_with_synchronous_normal_the_commit_runs_on_the_loop(tmp_path: Path) -> None:
    """Nothing waits for the disk: no thread is handed the commit (its gate stays shut)."""
    stores = Stores(sqlite_url(tmp_path), fast_paths=True, sqlite_synchronous="normal")
    commits = _commits(stores)
    executor = HeldCommits()
    commits.commit_on_thread = executor
    session_id = _ids(1)
    try:
        assert stores.run(stores.database.run(_insert_session(stores, session_id[0])))
        assert _stored(tmp_path / "memori.db", session_id) == set(session_id)
        assert commits.commits == 1
        assert executor.calls == 0
        assert commits._thread is None
    finally:
        executor.gate.set()
        stores.close()


def _claim(stores: Stores, session_id: str) -> Work[str]:
    """A write that need not survive a power cut (as a request id's claim)."""
    durable = _insert_session(stores, session_id)
    return Work(durable.start, writes=True, durable=False)


def _write_lock_free(path: Path) -> bool:
    """Whether another connection (another process's) could begin a write now."""
    with closing(sqlite3.connect(path, timeout=0)) as connection:
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            return False
        connection.execute("ROLLBACK")
        return True


async def _until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def test_a_claim_is_answered_at_once_and_committed_after_its_linger(
    stores: Stores, held: HeldCommits, tmp_path: Path
) -> None:
    """No durable write comes: the claim's transaction, open meanwhile (another process's
    writer waits for it, then finds the claim), commits on the thread once it has lingered;
    the connection's commits stay synced."""
    path = tmp_path / "memori.db"
    session_id = _ids(1)
    commits = _commits(stores)

    async def scenario() -> None:
        answered = time.monotonic()
        assert await stores.database.run(_claim(stores, session_id[0])) == session_id[0]
        assert held.calls == 0
        assert not _write_lock_free(path)
        assert _stored(path, session_id) == set()
        await _until(lambda: held.calls == 1)
        assert time.monotonic() - answered >= CLAIM_LINGER * 0.9
        held.gate.set()
        await _until(lambda: commits.commits == 1)

    stores.run(scenario())
    assert _stored(path, session_id) == set(session_id)
    assert _write_lock_free(path)
    assert held.calls == 1
    (level,) = commits._connection.execute("PRAGMA synchronous").fetchone()
    assert level == 2  # FULL


def test_claims_ride_with_the_next_durable_write_and_are_answered_before_it(
    stores: Stores, held: HeldCommits, tmp_path: Path
) -> None:
    """Claims before a durable write, and one after it in the same turn of the loop, make one
    transaction with it: one synced commit, which the claims did not wait for; their linger
    adds no commit of its own."""
    path = tmp_path / "memori.db"
    claims, durable, joining = _ids(2), _ids(1), _ids(1)
    database = stores.database

    async def scenario() -> None:
        first = [await database.run(_claim(stores, i)) for i in claims]
        assert first == claims
        synced = asyncio.ensure_future(database.run(_insert_session(stores, durable[0])))
        joined = asyncio.ensure_future(database.run(_claim(stores, joining[0])))
        await _until(lambda: held.calls == 1)
        assert joined.done()
        assert joined.result() == joining[0]
        assert not synced.done()  # held at the thread's gate
        assert _stored(path, claims + durable + joining) == set()
        held.gate.set()
        assert await synced == durable[0]
        await asyncio.sleep(CLAIM_LINGER * 3)

    stores.run(scenario())
    assert _stored(path, claims + durable + joining) == set(claims + durable + joining)
    assert held.calls == 1
    assert _commits(stores).commits == 1


def test_closing_commits_a_lingering_claim_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_loop_commits, "CLAIM_LINGER", 60.0)
    stores = Stores(sqlite_url(tmp_path), fast_paths=True)
    session_id = _ids(1)
    try:
        assert stores.run(stores.database.run(_claim(stores, session_id[0]))) == session_id[0]
        started = time.monotonic()
        stores.run(stores.database.close())
        assert time.monotonic() - started < 10
    finally:
        stores.loop.close()
    assert _stored(tmp_path / "memori.db", session_id) == set(session_id)


def test_a_window_read_with_a_claim_before_a_failed_commit_is_not_held(
    stores: Stores, held: HeldCommits, tmp_path: Path
) -> None:
    """A call's claim and load run on the write connection, so they see a turn stored in
    the same open transaction before its commit. That commit fails, and another process
    stores a turn: the next call reads the session as it is, with theirs, not the lost one."""
    turns, idle = stores.turns, 3600.0
    window: dict[str, Any] = {"idle_seconds": idle, "token_budget": 8000, "min_messages": 1}

    def turn(text: str) -> list[NewMessage]:
        return [NewMessage("user", text, token_count=5), NewMessage("assistant", text)]

    held.gate.set()
    first = stores.run(turns.load(TENANT, OWNER, None, **window))
    session = stores.run(
        turns.store_turn(TENANT, OWNER, first, turn("kept"), idle_seconds=idle, completion=None)
    )
    loaded = stores.run(turns.load(TENANT, OWNER, session.id, **window))
    held.gate.clear()

    async def scenario() -> tuple[object, Any]:
        storing = asyncio.ensure_future(
            turns.store_turn(
                TENANT, OWNER, loaded, turn("lost"), idle_seconds=idle, completion=None
            )
        )
        await asyncio.sleep(0)  # the turn runs; its commit is due after this loop turn
        claiming = stores.requests.claiming(TENANT, "request-1", "complete", "fp", 60)
        claim, seen = await turns.claim_and_load(claiming, TENANT, OWNER, session.id, **window)
        assert seen is not None
        assert len(seen.history) == 4  # the turn, before its commit
        held.fail = True
        held.gate.set()
        stored = await asyncio.gather(storing, return_exceptions=True)
        return stored[0], claim

    failed, _claim = stores.run(scenario())
    assert isinstance(failed, StorageUnavailable)
    # Another process stores a turn: the session's counter reaches what was held.
    other = Stores(sqlite_url(tmp_path), fast_paths=True)
    try:
        theirs = other.run(other.turns.load(TENANT, OWNER, session.id, **window))
        other.run(
            other.turns.store_turn(
                TENANT, OWNER, theirs, turn("other"), idle_seconds=idle, completion=None
            )
        )
    finally:
        other.close()
    again = stores.run(turns.load(TENANT, OWNER, session.id, **window))
    assert [json.loads(m.encoded)["content"] for m in again.history] == ["kept"] * 2 + ["other"] * 2


def test_a_write_that_fails_alone_leaves_the_write_lock_free(
    stores: Stores, tmp_path: Path
) -> None:
    """Its transaction, begun for it, ends at once: nothing else waits to join it."""
    session_id = _ids(1)

    def fails() -> Unit[None]:
        yield from _insert_session(stores, session_id[0]).start()
        raise ValueError("the unit's own failure")

    async def scenario() -> None:
        with pytest.raises(ValueError, match="own failure"):
            await stores.database.run(Work(fails, writes=True))
        await _until(lambda: _write_lock_free(tmp_path / "memori.db"), seconds=1.0)

    stores.run(scenario())
    assert _stored(tmp_path / "memori.db", session_id) == set()
