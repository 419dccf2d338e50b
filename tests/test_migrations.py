"""Alembic migrations: they build exactly the tables the code uses, and run safely."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from memori_server.storage.database import Database
from memori_server.storage.migrate import migrate
from memori_server.storage.tables import metadata, outside_metadata
from sqlalchemy.engine import Connection

from tests.server_process import SERVER_BIN, ServerProcess


def _differences(connection: Connection) -> list[object]:
    def described(name: str | None, kind: str, parents: object) -> bool:
        return not outside_metadata(name)

    context = MigrationContext.configure(connection, opts={"include_name": described})
    return list(compare_metadata(context, metadata))


async def _migrate_and_compare(database_url: str) -> tuple[str | None, list[object]]:
    database = Database(database_url)
    try:
        revision = await migrate(database)
        await migrate(database)  # a second run is a no-op
        return revision, await database.with_connection(_differences)
    finally:
        await database.close()


def test_migrations_match_the_table_definitions(fresh_database_url: str) -> None:
    revision, differences = asyncio.run(_migrate_and_compare(fresh_database_url))
    assert revision == "0005"
    assert differences == [], "migrations and tables.py differ"


def test_migrate_command_and_no_migrate_on_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with ServerProcess(url, "--no-migrate-on-start") as server:
        pass
    assert "database schema is behind; run `memori-server migrate`" in server.log
    for _ in range(2):
        result = subprocess.run(
            [str(SERVER_BIN), "migrate", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "database migrated" in result.stderr
    with ServerProcess(url, "--no-migrate-on-start") as server:
        pass
    assert "schema is behind" not in server.log


@pytest.mark.postgres
def test_concurrent_server_starts_migrate_once(fresh_postgres_url: str) -> None:
    commands = [
        subprocess.Popen(
            [str(SERVER_BIN), "migrate", "--database-url", fresh_postgres_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [command.communicate(timeout=60)[0] for command in commands]
    assert [command.returncode for command in commands] == [0, 0, 0, 0], outputs
    upgrades = sum(output.count("Running upgrade  -> 0001") for output in outputs)
    assert upgrades == 1
