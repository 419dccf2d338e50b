"""`memori-server serve | migrate`: flags mirror the MEMORI_* variables one to one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr, ValidationError

from memori_server.app import (
    MemoriServer,
    StartupError,
    UnsafeConfiguration,
    checked_api_keys,
    open_database,
)
from memori_server.config import Settings
from memori_server.logging_setup import configure_logging
from memori_server.storage.engine import mask

log = logging.getLogger("memori_server")
MIGRATE_FIELDS = ("database_url", "log_level", "log_format")


def _shown_default(name: str) -> str:
    if name == "database_url":
        return "a memori.db file in the working directory"
    if name == "database_pool_size":
        return "2 for SQLite, 8 for PostgreSQL"
    default = Settings.model_fields[name].default
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    return "unset" if default in (None, "") else str(default)


def _add_setting_flags(parser: argparse.ArgumentParser, fields: Sequence[str]) -> None:
    for name in fields:
        info = Settings.model_fields[name]
        env = f"MEMORI_{name.upper()}"
        help_text = f"{info.description} [env {env}; default: {_shown_default(name)}]"
        flag = f"--{name.replace('_', '-')}"
        if info.annotation is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memori-server",
        description="memori-grpc: session-and-memory gateway for LLM apps (gRPC, memori.v1).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the gRPC server",
        description="Run the gRPC server until SIGTERM or SIGINT.",
    )
    _add_setting_flags(serve, list(Settings.model_fields))
    migrate_cmd = commands.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Apply database migrations and exit.",
    )
    _add_setting_flags(migrate_cmd, MIGRATE_FIELDS)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.model_fields and value is not None
    }
    return Settings(**overrides)


async def _migrate(settings: Settings) -> None:
    database = await open_database(settings.database_url, 1, migrate_schema=True)
    await database.close()
    log.info("database migrated", extra={"database": mask(settings.database_url)})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(f"memori-server: invalid configuration: {problems}", file=sys.stderr)
        return 2
    if args.command == "serve":
        try:
            checked_api_keys(settings)
        except UnsafeConfiguration as error:
            print(f"memori-server: {error}", file=sys.stderr)
            return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(
            MemoriServer(settings).serve_until_signalled()
            if args.command == "serve"
            else _migrate(settings)
        )
    except StartupError as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
