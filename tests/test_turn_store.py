"""TurnStore alone, on each database and each storage path (fast and thread), no server:
the read of a chat call's context and the unit that stores its turn."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import pytest
from memori_server.domain import Attribution
from memori_server.errors import AttributionMismatch, RequestIdTakenOver, SessionNotFound
from memori_server.storage.idempotency import ClaimState
from memori_server.storage.records import Completion, NewMessage
from memori_server.storage.units import Unit, Work

from tests.databases import sqlite_url
from tests.storage_support import Stores

T = TypeVar("T")
TENANT = "default"
IDLE = 86400.0


@pytest.fixture(scope="module", params=["fast", "threads"])
def stores(request: pytest.FixtureRequest, fresh_module_database_url: str) -> Iterator[Stores]:
    opened = Stores(fresh_module_database_url, fast_paths=request.param == "fast")
    yield opened
    opened.close()


def who() -> Attribution:
    return Attribution(entity_id=f"user-{uuid.uuid4().hex[:8]}", process_id="agent")


def turn(*texts: str) -> list[NewMessage]:
    roles = ("user", "assistant")
    return [NewMessage(roles[n % 2], text, token_count=10) for n, text in enumerate(texts)]


def load(stores: Stores, owner: Attribution, session_id: str | None, budget: int = 8000) -> Any:
    return stores.run(
        stores.turns.load(
            TENANT, owner, session_id, idle_seconds=IDLE, token_budget=budget, min_messages=1
        )
    )


def store(stores: Stores, owner: Attribution, loaded: Any, messages: list[NewMessage]) -> Any:
    return stores.run(
        stores.turns.store_turn(TENANT, owner, loaded, messages, idle_seconds=IDLE, completion=None)
    )


def store_done(
    stores: Stores,
    owner: Attribution,
    loaded: Any,
    messages: list[NewMessage],
    claimed: tuple[str, Any],
    response: str,
) -> Any:
    """Store a turn that marks its claimed request id (request id, claim) done."""
    request_id, claim = claimed
    completion = Completion(request_id, claim.owner or "", response, 60)
    return stores.run(
        stores.turns.store_turn(
            TENANT, owner, loaded, messages, idle_seconds=IDLE, completion=completion
        )
    )


def test_an_unknown_session_is_created_only_by_the_stored_turn(stores: Stores) -> None:
    owner, session_id = who(), str(uuid.uuid4())
    loaded = load(stores, owner, session_id)
    assert loaded.record is None
    assert loaded.history == []
    with pytest.raises(SessionNotFound):
        stores.run(stores.sessions.get(TENANT, session_id))  # the read wrote nothing
    record = store(stores, owner, loaded, turn("hi", "hello"))
    assert (record.id, record.message_count) == (session_id, 2)
    current = stores.run(stores.sessions.get_current(TENANT, owner, IDLE))
    assert current.id == session_id


def test_history_comes_back_oldest_first_and_whole_turns_are_numbered_in_order(
    stores: Stores,
) -> None:
    owner = who()
    loaded = load(stores, owner, None)
    first = store(stores, owner, loaded, turn("q1", "a1"))
    loaded = load(stores, owner, None)  # the attribution's current session now
    assert loaded.session_id == first.id
    assert loaded.is_current
    store(stores, owner, loaded, turn("q2", "a2"))
    again = load(stores, owner, first.id)
    assert [json.loads(m.encoded)["content"] for m in again.history] == ["q1", "a1", "q2", "a2"]
    assert again.from_session_start
    page, _ = stores.run(
        stores.sessions.list_messages(TENANT, first.id, owner, after_sequence=0, limit=10)
    )
    assert [(m.sequence, m.message.content) for m in page] == [
        (1, "q1"),
        (2, "a1"),
        (3, "q2"),
        (4, "a2"),
    ]


def test_a_long_history_is_read_in_more_batches_up_to_the_budget(stores: Stores) -> None:
    owner, session_id = who(), str(uuid.uuid4())
    stores.run(stores.sessions.set(TENANT, owner, session_id))
    stores.run(
        stores.sessions.append_messages(TENANT, session_id, turn(*(f"m{n}" for n in range(1400))))
    )
    # 10 tokens each: a budget of 9000 needs about 900 messages, more than the first window.
    loaded = load(stores, owner, session_id, budget=9000)
    contents = [json.loads(m.encoded)["content"] for m in loaded.history]
    assert contents[-1] == "m1399"
    assert 900 <= len(contents) <= 902
    assert contents == [f"m{n}" for n in range(1400 - len(contents), 1400)]
    assert not loaded.from_session_start
    everything = load(stores, owner, session_id, budget=100_000)
    assert len(everything.history) == 1400
    assert everything.from_session_start


def test_two_first_calls_of_an_attribution_join_one_session(stores: Stores) -> None:
    owner = who()
    first, second = load(stores, owner, None), load(stores, owner, None)
    assert first.session_id != second.session_id  # neither exists yet
    one = store(stores, owner, first, turn("a", "b"))
    two = store(stores, owner, second, turn("c", "d"))
    assert one.id == two.id
    assert two.message_count == 4


def test_an_id_another_attribution_took_meanwhile_stores_nothing(stores: Stores) -> None:
    owner, session_id = who(), str(uuid.uuid4())
    loaded = load(stores, owner, session_id)  # unknown at load time
    intruder = who()
    stores.run(stores.sessions.set(TENANT, intruder, session_id))
    with pytest.raises(AttributionMismatch):
        store(stores, owner, loaded, turn("x", "y"))
    assert stores.run(stores.sessions.get(TENANT, session_id)).message_count == 0
    with pytest.raises(Exception, match="no session active"):
        stores.run(stores.sessions.get_current(TENANT, owner, IDLE))


def test_a_session_deleted_between_load_and_store_stores_nothing(stores: Stores) -> None:
    owner = who()
    first = store(stores, owner, load(stores, owner, None), turn("a", "b"))
    loaded = load(stores, owner, first.id)
    stores.run(stores.sessions.delete(TENANT, first.id))
    with pytest.raises(SessionNotFound):
        store(stores, owner, loaded, turn("c", "d"))
    with pytest.raises(SessionNotFound):
        stores.run(stores.sessions.get(TENANT, first.id))


def test_the_turn_marks_its_request_id_done_in_the_same_transaction(stores: Stores) -> None:
    owner, request_id = who(), str(uuid.uuid4())
    claim = stores.run(stores.requests.claim(TENANT, request_id, "complete", "fp", 60))
    assert claim.state is ClaimState.CLAIMED
    loaded = load(stores, owner, None)
    record = store_done(stores, owner, loaded, turn("q", "a"), (request_id, claim), '{"id": "x"}')
    replay = stores.run(stores.requests.claim(TENANT, request_id, "complete", "fp", 60))
    assert replay.state is ClaimState.DONE
    assert (replay.session_id, replay.response) == (record.id, '{"id": "x"}')


def test_a_claim_a_retry_took_over_stores_nothing(stores: Stores) -> None:
    """A call that outlived its lease finds its claim taken over: its turn is refused whole,
    and the retry's claim stays the retry's."""
    owner, request_id = who(), str(uuid.uuid4())
    slow = stores.run(stores.requests.claim(TENANT, request_id, "complete", "fp", -1))
    retry = stores.run(stores.requests.claim(TENANT, request_id, "complete", "fp", 60))
    assert retry.state is ClaimState.CLAIMED  # the first lease had run out: taken over
    assert retry.owner != slow.owner
    loaded = load(stores, owner, None)
    with pytest.raises(RequestIdTakenOver):
        stores.run(
            stores.turns.store_turn(
                TENANT,
                owner,
                loaded,
                turn("late", "reply"),
                idle_seconds=IDLE,
                completion=Completion(request_id, slow.owner or "", "{}", 60),
            )
        )
    with pytest.raises(SessionNotFound):
        stores.run(stores.sessions.get(TENANT, loaded.session_id))  # nothing was created
    stores.run(stores.requests.release(TENANT, request_id, slow.owner or ""))
    again = stores.run(stores.requests.claim(TENANT, request_id, "complete", "fp", 60))
    assert again.state is ClaimState.IN_FLIGHT  # the slow call's release left the retry's claim


def _read_steps(path: str, statement: Any, session_id: str, since: int) -> int:
    """SQLite VM instructions to run a chat call's read: its cost, free of the clock."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    parameters = {"tenant_id": TENANT, "session_id": session_id, "window": 500, "since": since}
    with closing(sqlite3.connect(path)) as connection:
        connection.set_progress_handler(count, 1)
        rows = connection.execute(statement.sql, statement.parameters(parameters)).fetchall()
    assert len(rows) == 1  # the session, no message after `since`
    return steps


def test_a_read_with_the_window_held_does_not_walk_the_window_on_sqlite(tmp_path: Path) -> None:
    """A call whose window is held asks only for the messages after it. With two lower
    bounds on the key, SQLite ranged on the window's and filtered the rest: every call with
    nothing new walked its whole window (48 µs at 400 messages, 8 µs now)."""
    stores = Stores(sqlite_url(tmp_path), fast_paths=True)
    try:
        sessions = {}
        for size in (4, 400):
            owner, session_id = who(), str(uuid.uuid4())
            loaded = load(stores, owner, session_id)
            store(stores, owner, loaded, turn(*(f"message {n}" for n in range(size))))
            sessions[size] = session_id
        statement = stores.database.statements.load_by_id
    finally:
        stores.close()
    path = str(tmp_path / "memori.db")
    small, large = (_read_steps(path, statement, sessions[n], n) for n in (4, 400))
    assert large < 2 * small, (small, large)


def claim_and_load(
    stores: Stores, owner: Attribution, session_id: str | None, request_id: str
) -> tuple[Any, Any]:
    claiming = stores.requests.claiming(TENANT, request_id, "complete", "fp", 60)
    return stores.run(
        stores.turns.claim_and_load(
            claiming,
            TENANT,
            owner,
            session_id,
            idle_seconds=IDLE,
            token_budget=8000,
            min_messages=1,
        )
    )


def test_a_claim_and_the_load_come_back_together_and_the_load_only_for_a_claim_made(
    stores: Stores,
) -> None:
    """The session's context read with the claim is the one `load` reads; a request id
    already done gives its result and no context."""
    owner, request_id = who(), str(uuid.uuid4())
    first = store(stores, owner, load(stores, owner, None), turn("q1", "a1"))
    claim, loaded = claim_and_load(stores, owner, first.id, request_id)
    assert claim.state is ClaimState.CLAIMED
    alone = load(stores, owner, first.id)
    assert dataclasses.replace(loaded, call_start=alone.call_start) == alone
    assert [json.loads(m.encoded)["content"] for m in loaded.history] == ["q1", "a1"]
    store_done(stores, owner, loaded, turn("q2", "a2"), (request_id, claim), '{"id": "y"}')
    replay, nothing = claim_and_load(stores, owner, first.id, request_id)
    assert (replay.state, replay.response, nothing) == (ClaimState.DONE, '{"id": "y"}', None)


def test_a_load_that_fails_after_its_claim_leaves_the_claim_made(stores: Stores) -> None:
    """Another attribution's session: the load refuses it, the claim stays made (the caller
    releases it with the token it claimed with)."""
    owner, stranger, request_id = who(), who(), str(uuid.uuid4())
    theirs = store(stores, stranger, load(stores, stranger, None), turn("q", "a"))
    claiming = stores.requests.claiming(TENANT, request_id, "complete", "fp", 60)
    with pytest.raises(AttributionMismatch):
        stores.run(
            stores.turns.claim_and_load(
                claiming,
                TENANT,
                owner,
                theirs.id,
                idle_seconds=IDLE,
                token_budget=8000,
                min_messages=1,
            )
        )
    stores.run(stores.requests.release(TENANT, request_id, claiming.owner))
    again = stores.run(stores.requests.claim(TENANT, request_id, "complete", "fp", 60))
    assert again.state is ClaimState.CLAIMED


def _noted(unit: Unit[T], batches: list[list[Any]]) -> Unit[T]:
    """`unit`, noting each batch's statements before the driver runs it."""
    try:
        batch = next(unit)
        while True:
            batches.append([op.statement for op in batch.ops])
            batch = unit.send((yield batch))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def test_on_postgresql_the_claim_and_the_load_share_one_round_trip(fresh_postgres_url: str) -> None:
    """One unit, whose first batch (one pipelined round trip) holds the claim's insert and
    the load's read; on SQLite they stay two units (see `claim_and_load`)."""
    stores = Stores(fresh_postgres_url, fast_paths=True)
    try:
        runs: list[list[list[Any]]] = []
        run = stores.database.run

        async def noting(work: Work[T]) -> T:
            batches: list[list[Any]] = []
            runs.append(batches)
            return await run(dataclasses.replace(work, start=lambda: _noted(work.start(), batches)))

        owner = who()
        first = store(stores, owner, load(stores, owner, None), turn("q", "a"))
        stores.database.run = noting  # type: ignore[method-assign]
        claim, loaded = claim_and_load(stores, owner, first.id, str(uuid.uuid4()))
        assert claim.state is ClaimState.CLAIMED
        assert loaded is not None
        assert loaded.session_id == first.id
        statements = stores.database.statements
        assert runs == [[[statements.claim_new, statements.load_by_id]]]
    finally:
        stores.close()
