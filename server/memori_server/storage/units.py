"""A transaction written once, without I/O: a generator of statement batches.

Each store method builds a unit: a generator that yields a `Batch` of operations, receives
their results, decides, yields the next batch or returns its result. Drivers run units (a
worker thread, SQLite on the event loop, psycopg's pipeline on the event loop), so a
transaction's logic exists once however it is executed, the way h11 keeps HTTP apart from
sockets. A batch goes to the database in one round trip where the driver can pipeline.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from memori_server.storage.compiled import CompiledStatement

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


class Fetch(enum.Enum):
    """What an operation's result is: nothing, its first row, all rows, or the row count."""

    NONE = "none"
    ONE = "one"
    ALL = "all"
    ROWCOUNT = "rowcount"


@dataclass(frozen=True, slots=True)
class Op:
    statement: CompiledStatement
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    """One parameter set, or a sequence of them to execute the statement for each (many)."""
    fetch: Fetch = Fetch.NONE

    @property
    def many(self) -> bool:
        # The usual types first: the ABC's own check costs more than the statement's
        # parameters.
        kind = type(self.params)
        if kind is dict:
            return False
        return kind is list or kind is tuple or not isinstance(self.params, Mapping)


@dataclass(frozen=True, slots=True)
class Batch:
    ops: tuple[Op, ...]
    commit: bool = False
    """Commit together with this batch, before the unit sees the results (one round trip on
    PostgreSQL). Only for batches whose every outcome may be committed; a later batch of the
    unit runs in a new transaction."""


Unit = Generator[Batch, list[Any], T]


class ConstraintViolation(Exception):
    """A statement broke a constraint (its transaction is rolled back); thrown into the
    unit, which says what that means (a session deleted meanwhile, say)."""


@dataclass(frozen=True, slots=True)
class Work(Generic[T]):
    """A unit of storage work and what decides where it runs (see `execution`)."""

    start: Callable[[], Unit[T]]
    """Makes the unit; called again if a fast path gives up before running anything."""
    writes: bool
    heavy: bool = False
    """Large: many rows, or long for any database to run, so it never runs on the event
    loop."""
    slow: bool = False
    """A few rows, but the database takes milliseconds to find them (a full-text query):
    on the event loop only where the loop does not wait for the database (PostgreSQL's
    async connection; SQLite runs a statement inline)."""
    durable: bool = True
    """False: nothing acknowledged depends on the write surviving a power loss or a failed
    commit (a request id's claim: lost, the turn that needs it is refused and a retry runs
    the call again, as after any crash before the turn). On SQLite's event-loop path the
    unit's result is given without waiting for its commit, which the next durable unit's
    synced commit carries (or its own, after `CLAIM_LINGER`); on PostgreSQL its transaction
    commits with `synchronous_commit` off."""


def ops(*items: Op, commit: bool = False) -> Batch:
    return Batch(tuple(items), commit)


def together(first: Unit[A], second: Unit[B]) -> Unit[tuple[A, B]]:
    """Two units as one: their first batches go to the database as one batch (one round
    trip on PostgreSQL), committed when both would commit; then each goes on alone, `first`
    before `second`. For units that begin with a batch and meet no constraint violation."""
    head, tail = next(first), next(second)
    results = yield Batch(head.ops + tail.ops, head.commit and tail.commit)
    first_value = yield from _rest(first, results[: len(head.ops)])
    second_value = yield from _rest(second, results[len(head.ops) :])
    return first_value, second_value


def _rest(unit: Unit[T], results: list[Any]) -> Unit[T]:
    """The rest of a unit that has been sent its first batch's `results`."""
    while True:
        try:
            batch = unit.send(results)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        results = yield batch


__all__ = ["Batch", "ConstraintViolation", "Fetch", "Op", "Unit", "Work", "ops", "together"]
