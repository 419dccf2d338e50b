"""Table definitions; Alembic migrations create them, tests compare the two."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

ID_LENGTH = 36
NAME_LENGTH = 100
TENANT_LENGTH = 64
REQUEST_ID_LENGTH = 128
OWNER_LENGTH = 32

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive, as text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # SQLite's text in one step: SQLAlchemy's own conversion (the naive value, then a
    # format with a dict of its fields) took a few microseconds per value, and a turn
    # binds about ten of them. The same text (reading it back is fromisoformat already).

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return sqlite_time_text


_last_time_text: tuple[datetime | None, str] = (None, "")
"""The last value `sqlite_time_text` wrote and its text, as one tuple (threads read it
whole). Held, the value cannot be freed and its identity reused."""


def sqlite_time_text(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores for `value` in UTC
    (`YYYY-MM-DD HH:MM:SS.ffffff`): times compare as this text, so it must match exactly."""
    global _last_time_text
    if value is None:
        return None
    last = _last_time_text
    if last[0] is value:  # a turn binds its one `now` to each message and to its session
        return last[1]
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    # "...+00:00" cut off: isoformat pads the year to four digits, so the offset starts at 26.
    text = utc.isoformat(" ", "microseconds")[:26]
    _last_time_text = (value, text)
    return text


sessions = Table(
    "sessions",
    metadata,
    Column("tenant_id", String(TENANT_LENGTH), primary_key=True),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("entity_id", String(NAME_LENGTH), nullable=False),
    Column("process_id", String(NAME_LENGTH), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    Column("message_count", BigInteger, nullable=False, default=0),
    # Long-term memory: the messages up to this sequence are in memory_passages.
    # (A server default only: compiled statements run without SQLAlchemy's Python defaults.)
    Column("indexed_seq", BigInteger, nullable=False, server_default="0"),
    Index(None, "tenant_id", "entity_id", "process_id", "update_time", "id"),
    Index(None, "update_time"),  # retention finds idle sessions across tenants
)
# The indexer finds sessions with messages not yet indexed without scanning the others.
_unindexed = sessions.c.message_count > sessions.c.indexed_seq
Index(
    "ix_sessions_unindexed",
    sessions.c.update_time,
    sqlite_where=_unindexed,
    postgresql_where=_unindexed,
)

messages = Table(
    "messages",
    metadata,
    Column("tenant_id", String(TENANT_LENGTH), primary_key=True),
    Column("session_id", String(ID_LENGTH), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=True),
    # none_as_null: no content parts is SQL NULL, not the JSON text 'null' (cheaper to read).
    Column("content_parts", JSON(none_as_null=True), nullable=True),
    Column("name", String(NAME_LENGTH), nullable=True),
    Column("tool_calls", JSON(none_as_null=True), nullable=True),
    Column("tool_call_id", String(255), nullable=True),
    Column("token_count", Integer, nullable=False, default=0),
    Column("create_time", UtcDateTime(), nullable=False),
    ForeignKeyConstraint(
        ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
    ),
)

current_sessions = Table(
    "current_sessions",
    metadata,
    Column("tenant_id", String(TENANT_LENGTH), primary_key=True),
    Column("entity_id", String(NAME_LENGTH), primary_key=True),
    Column("process_id", String(NAME_LENGTH), primary_key=True),
    Column("session_id", String(ID_LENGTH), nullable=False),
    ForeignKeyConstraint(
        ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
    ),
    Index(None, "tenant_id", "session_id"),
)

completion_requests = Table(
    "completion_requests",
    metadata,
    Column("tenant_id", String(TENANT_LENGTH), primary_key=True),
    Column("request_id", String(REQUEST_ID_LENGTH), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("session_id", String(ID_LENGTH), nullable=True),
    Column("response", Text, nullable=True),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("expire_time", UtcDateTime(), nullable=False),
    # The call that holds the claim: only it marks the record done or releases it.
    Column("owner", String(OWNER_LENGTH), nullable=True),
    Index(None, "tenant_id", "session_id"),
    Index(None, "expire_time"),  # the purge finds expired records without a scan
)

# Entities erased recently: a chat call that began before the erasure must not create a
# session for the entity afterwards. Kept a day, far longer than any call may run.
entity_erasures = Table(
    "entity_erasures",
    metadata,
    Column("tenant_id", String(TENANT_LENGTH), primary_key=True),
    Column("entity_id", String(NAME_LENGTH), primary_key=True),
    Column("erase_time", UtcDateTime(), nullable=False),
    Index(None, "erase_time"),
)

# Long-term memory: passages (runs of consecutive messages of one session) with their local
# embedding, searchable per tenant and entity. Their full-text indexes live beside them and
# are created by the migrations only (SEARCH_INDEX_OBJECTS): an FTS5 table on SQLite; a
# generated `search_vector` tsvector column (text and scope token) with a GIN index without
# a pending list on PostgreSQL.
memory_passages = Table(
    "memory_passages",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("tenant_id", String(TENANT_LENGTH), nullable=False),
    Column("session_id", String(ID_LENGTH), nullable=False),
    Column("entity_id", String(NAME_LENGTH), nullable=False),
    Column("process_id", String(NAME_LENGTH), nullable=False),
    # One full-text token naming the tenant and entity: the full-text index matches it with
    # the query's words, so a search never reads other entities' passages.
    Column("scope", String(40), nullable=False),
    Column("seq_first", BigInteger, nullable=False),
    Column("seq_last", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("token_count", Integer, nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    ForeignKeyConstraint(
        ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
    ),
    # A search reads an entity's passages after an id, in id order, and counts them.
    Index(None, "tenant_id", "entity_id", "id"),
    Index(None, "tenant_id", "session_id", "seq_first"),
)
SEARCH_INDEX_OBJECTS = ("memory_fts", "ix_memory_passages_text_search", "search_vector")
"""Created by migrations 0004 and 0005 outside `metadata`: comparisons of the two leave
them out."""


def outside_metadata(name: str | None) -> bool:
    """Whether a schema object name belongs to the full-text indexes (FTS5 shadow tables
    included), which `metadata` does not describe."""
    return name is not None and name.startswith(SEARCH_INDEX_OBJECTS)
