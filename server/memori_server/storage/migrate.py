"""Apply Alembic migrations on an async engine, safely from many processes at once."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from memori_server.storage.engine import WRITE_OPTION

SCRIPT_LOCATION = "memori_server.storage:migrations"
_PG_MIGRATION_LOCK = 0x6D656D6F  # "memo": serializes concurrent server starts on one database


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(engine: AsyncEngine) -> str | None:
    """Upgrade the schema to the newest revision; returns that revision."""
    async with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        await conn.run_sync(_upgrade)
        return await conn.run_sync(_current_revision)


async def pending_revision(engine: AsyncEngine) -> str | None:
    """The newest revision when the database lags behind it, else None."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as conn:
        current = await conn.run_sync(_current_revision)
    return head if current != head else None
