"""A SQLAlchemy Core statement compiled once for one dialect, for drivers to run directly.

SQLAlchemy writes the SQL and knows each column type's conversions; doing that per call
(building, caching by key, wrapping results) costs more than a short query itself. So each
statement is compiled once, and every driver (thread, event loop, pipeline) sends the same SQL
text through the DBAPI driver, converting parameters and rows with SQLAlchemy's own type
processors.
"""

from __future__ import annotations

import operator
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


class CompiledStatement:
    """SQL text plus the bind conversions of its parameters and the result conversions of
    its columns (a SELECT's, or a DML statement's RETURNING)."""

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, *, repeated_head: int = 0
    ) -> None:
        """`repeated_head`: this many leading columns hold the same values in every row (a
        joined parent row); `rows` converts them once."""
        compiled: Any = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._positional = compiled.positional
        names: Sequence[str] = compiled.positiontup or list(compiled.binds)
        processors_by_name = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self._binds = [(name, processors_by_name[name]) for name in names]
        self.numbered_sql = b""
        """PostgreSQL: the same statement with `$n` placeholders, for libpq itself."""
        self._numbered_binds: list[tuple[str, Processor]] = []
        if dialect.name == "postgresql":
            numbered: Any = statement.compile(dialect=_numbered_dialect(dialect))
            self.numbered_sql = str(numbered).encode()
            self._numbered_binds = [
                (name, processors_by_name[name]) for name in numbered.positiontup
            ]
        # Values the statement carries itself (a LIMIT, say), used unless the call gives one.
        self._own_values = {name: compiled.binds[name].value for name in names}
        self._fast = _Binds(self._binds, self._own_values)
        self._numbered_fast = _Binds(self._numbered_binds, self._own_values)
        columns = _result_columns(statement)
        processors: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self._active = [(index, process) for index, process in enumerate(processors) if process]
        self._head = repeated_head
        self._tail_active = [
            (index, process) for index, process in self._active if index >= repeated_head
        ]
        # Without known columns (a text statement) rows stay plain tuples.
        self._row: Any = (
            namedtuple("Row", [column.key for column in columns])
            if columns
            else lambda *values: values
        )

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters (a list for `?` placeholders, else a dict)."""
        converted = self._fast.converted(values)
        if self._positional:
            return converted
        return dict(zip((name for name, _ in self._binds), converted, strict=True))

    def numbered_parameters(self, values: Mapping[str, Any]) -> list[Any]:
        """The parameters of `numbered_sql`, in order ($1, $2, ...)."""
        return self._numbered_fast.converted(values)

    def row(self, raw: Sequence[Any] | None) -> Any:
        """A driver row as a named tuple of converted values (None stays None)."""
        if raw is None:
            return None
        values = list(raw)
        for index, process in self._active:
            values[index] = process(values[index])
        return self._row(*values)

    def rows(self, raws: Sequence[Sequence[Any]]) -> list[Any]:
        """Driver rows as named tuples, the repeated head converted only in the first."""
        if not self._head or len(raws) < 2:
            return [self.row(raw) for raw in raws]
        first = self.row(raws[0])
        head = list(first[: self._head])
        result = [first]
        for raw in raws[1:]:
            values = head + list(raw[self._head :])
            for index, process in self._tail_active:
                values[index] = process(values[index])
            result.append(self._row(*values))
        return result


class _Binds:
    """Parameters in placeholder order, converted. The values a call must give are read in
    one step, the statement's own values (a literal state, a LIMIT) added where the call
    gives none, and only the values with a conversion are touched: a loop over every name
    cost several microseconds for a row of eleven columns."""

    __slots__ = ("_binds", "_converted_at", "_own", "_own_at", "_read")

    def __init__(self, binds: Sequence[tuple[str, Processor]], own: Mapping[str, Any]) -> None:
        self._binds = binds
        self._own = own
        self._converted_at = [
            (index, process) for index, (_, process) in enumerate(binds) if process
        ]
        self._own_at = [
            (index, name, own[name])
            for index, (name, _) in enumerate(binds)
            if own.get(name) is not None
        ]
        owned = {name for _, name, _ in self._own_at}
        given = [name for name, _ in binds if name not in owned]
        self._read: Callable[[Mapping[str, Any]], Any] = (
            operator.itemgetter(*given)
            if len(given) > 1
            else lambda values: [values[name] for name in given]
        )

    def converted(self, values: Mapping[str, Any]) -> list[Any]:
        try:
            converted = list(self._read(values))
        except KeyError:  # a value missing: None, as the statement's own value says
            own = self._own
            converted = [values[name] if name in values else own[name] for name, _ in self._binds]
        else:
            for index, name, value in self._own_at:  # in order: each lands at its index
                converted.insert(index, values.get(name, value))
        for index, process in self._converted_at:
            converted[index] = process(converted[index])
        return converted


_NUMBERED_DIALECTS: dict[str, Dialect] = {}


def _numbered_dialect(dialect: Dialect) -> Dialect:
    """A dialect of the same kind that writes `$1, $2, ...` (libpq's own placeholders)."""
    key = f"{dialect.name}+{dialect.driver}"
    if key not in _NUMBERED_DIALECTS:
        _NUMBERED_DIALECTS[key] = type(dialect)(paramstyle="numeric_dollar")  # type: ignore[call-arg]
    return _NUMBERED_DIALECTS[key]


def _result_columns(statement: ClauseElement) -> list[Any]:
    if isinstance(statement, Select):
        return list(statement.selected_columns)
    if isinstance(statement, UpdateBase):
        return list(statement.exported_columns)  # its RETURNING columns, if any
    return []


__all__ = ["CompiledStatement"]
