"""Every statement's parameters, as the drivers get them: the call's values in placeholder
order, the statement's own values where the call gives none, each converted by its type."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.statements import Statements
from sqlalchemy.dialects import postgresql, sqlite


def _statements(dialect: Any) -> list[tuple[str, CompiledStatement]]:
    found = vars(Statements(dialect)).items()
    return [(name, value) for name, value in found if isinstance(value, CompiledStatement)]


def _expected(
    binds: list[tuple[str, Any]], own: dict[str, Any], values: dict[str, Any]
) -> list[Any]:
    """The rule, one name at a time."""
    result = []
    for name, process in binds:
        value = values[name] if name in values else own[name]
        result.append(process(value) if process else value)
    return result


def _plain(values: list[Any]) -> list[Any]:
    """psycopg's Json wrappers compare by identity: compare what they wrap."""
    return [getattr(value, "obj", value) for value in values]


def _value(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.randint(-5, 10**9),
            f"text-{rng.random()}",
            datetime(2026, 12, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 10**12)),
            None,
        ]
    )


_DIALECTS: list[Any] = [sqlite.dialect(), postgresql.dialect()]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("dialect", _DIALECTS, ids=["sqlite", "postgresql"])
def test_parameters_follow_the_rule_for_every_statement(dialect: Any) -> None:
    rng = random.Random(11)
    checked = 0
    for name, statement in _statements(dialect):
        binds = statement._binds
        own = statement._own_values
        names = sorted({bind for bind, _ in binds})
        for _ in range(20):
            values = {bind: _value(rng) for bind in names if rng.random() < 0.9}
            for bind in names:  # a statement's own value kept, or overridden by the call
                if own.get(bind) is not None and rng.random() < 0.5:
                    values.pop(bind, None)
            if any(isinstance(v, datetime) for v in values.values()) and dialect.name == "sqlite":
                values = {  # a JSON column's converter takes no datetime: keep to its types
                    bind: value for bind, value in values.items() if not isinstance(value, datetime)
                }
            try:
                expected = _expected(binds, own, values)
            except (TypeError, ValueError, AttributeError):
                continue  # a value this column's converter refuses: not this rule's concern
            given = statement.parameters(values)
            given = list(given.values()) if isinstance(given, dict) else given
            assert _plain(given) == _plain(expected), name
            if dialect.name == "postgresql":
                numbered = statement._numbered_binds
                assert _plain(statement.numbered_parameters(values)) == _plain(
                    _expected(numbered, own, values)
                ), name
            checked += 1
    assert checked > 200
