"""SQLite stores times as text and compares them as text: the text our fast conversion
writes (`tables.sqlite_time_text`) must be exactly SQLAlchemy's, which rows already stored
were written with."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

from memori_server.storage.tables import UtcDateTime, sqlite_time_text
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite


def _sqlalchemy_text(value: datetime) -> str:
    dialect = sqlite.dialect()
    process = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    text = process(value.astimezone(UTC).replace(tzinfo=None))
    assert isinstance(text, str)
    return text


def _times(count: int) -> list[datetime]:
    rng = random.Random(7)
    times = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 30, 12, 0, 0, 0, tzinfo=UTC),  # no microseconds: still written
    ]
    while len(times) < count:
        zone = UTC if rng.random() < 0.5 else timezone(timedelta(minutes=rng.randint(-720, 720)))
        when = datetime(
            rng.randint(2, 9998),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            rng.choice((0, rng.randint(0, 999999))),
            tzinfo=zone,
        )
        times.append(when)
    return times


def test_the_text_is_sqlalchemys_for_any_time_in_any_zone() -> None:
    dialect = sqlite.dialect()
    bind = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is sqlite_time_text
    for when in _times(5000):
        assert sqlite_time_text(when) == _sqlalchemy_text(when), when
    assert sqlite_time_text(None) is None


def test_times_read_back_equal_and_sort_as_their_text_does() -> None:
    dialect = sqlite.dialect()
    read = UtcDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert read is not None
    times = _times(500)
    with sqlite3.connect(":memory:") as connection:
        connection.execute("CREATE TABLE t (at TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [(sqlite_time_text(w),) for w in times])
        stored = [row[0] for row in connection.execute("SELECT at FROM t ORDER BY at")]
    assert [read(text) for text in stored] == sorted(w.astimezone(UTC) for w in times)


def test_the_same_time_given_again_or_equal_times_apart_give_the_same_text() -> None:
    """The last text is kept for the same datetime object (a turn binds one `now` thrice);
    another object, equal or not, is written afresh."""
    for when in _times(200):
        expected = _sqlalchemy_text(when)
        assert sqlite_time_text(when) == expected
        assert sqlite_time_text(when) == expected  # the kept text
        later = when.astimezone(UTC).replace(year=when.astimezone(UTC).year % 9998 + 1)
        assert sqlite_time_text(later) == _sqlalchemy_text(later)
        assert sqlite_time_text(when) == expected
