"""Apply Alembic migrations, safely from many processes at once."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from memori_server.storage.database import Database

SCRIPT_LOCATION = "memori_server.storage:migrations"
_PG_MIGRATION_LOCK = 0x6D656D6F  # "memo": serializes concurrent server starts on one database


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> str | None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return _current_revision(connection)


async def migrate(database: Database) -> str | None:
    """Upgrade the schema to the newest revision; returns that revision."""
    return await database.with_connection(_upgrade)


async def pending_revision(database: Database) -> str | None:
    """The newest revision when the database lags behind it, else None."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = await database.with_connection(_current_revision)
    return head if current != head else None
