"""@memori-grpc/client (client_ts): the TypeScript client's node:test suites.

tests/node/ts_client/*.test.ts run against a real `memori-server` subprocess (with API keys, so
`MEMORI_API_KEY` is exercised) and the stand-in upstream, through the built package
(client_ts/dist, which the module builds first) and a real openai-node. The suites include the
examples in examples/ts, run as a user runs them. SQLite always; PostgreSQL too when
MEMORI_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import warnings
from collections.abc import Iterator

import pytest

from tests.databases import fresh_postgres_database, postgres_admin_url
from tests.node_tap import check_summary
from tests.repo_paths import NODE_BIN, ROOT, tool_env
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

NODE_SUITES = sorted((ROOT / "tests" / "node" / "ts_client").glob("*.test.ts"))
# The examples show how the API is used; the database under it changes nothing they show, so on
# PostgreSQL only the client's own suites run (half the time).
EXAMPLES_SUITE = "examples.test.ts"
_TENANT = "ts-client-tests"


def node() -> str:
    found = shutil.which("node", path=tool_env()["PATH"])
    assert found is not None, "Node.js is needed for the TypeScript client tests"
    assert (NODE_BIN / "tsx").exists(), "node_modules missing: run ./dev setup"
    return found


def run(command: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=tool_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def built() -> None:
    """client_ts/dist from the current sources, as `./dev setup` builds it."""
    result = run([node(), str(ROOT / "client_ts" / "scripts" / "build.mjs")], timeout=120)
    assert result.returncode == 0, f"building client_ts failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('ts-client') / 'memori.db'}"
        return
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip("set MEMORI_TEST_DATABASE_URL to run against PostgreSQL")
    with fresh_postgres_database(admin_url) as url:
        yield url


@pytest.fixture(scope="module")
def api_key() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def services(database_url: str, api_key: str) -> Iterator[tuple[ServerProcess, StandinProcess]]:
    with (
        StandinProcess() as standin,
        ServerProcess(
            database_url,
            "--upstream-base-url",
            standin.base_url,
            env={"MEMORI_API_KEYS": f"{_TENANT}={api_key}"},
        ) as server,
    ):
        yield server, standin


def test_typescript_type_checks(built: None) -> None:
    """The tests, examples and benchmark type-check (strict) against the built package."""
    result = run([node(), str(ROOT / "node_modules" / "typescript" / "bin" / "tsc")], timeout=120)
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}\n{result.stderr}"


def test_ts_client_suites(
    built: None,
    services: tuple[ServerProcess, StandinProcess],
    api_key: str,
    database_url: str,
) -> None:
    server, standin = services
    suites = [
        path
        for path in NODE_SUITES
        if database_url.startswith("sqlite") or path.name != EXAMPLES_SUITE
    ]
    assert suites, "no tests/node/ts_client/*.test.ts found"
    result = run(
        [
            node(),
            "--import",
            "tsx",
            "--test",
            "--test-reporter=tap",
            "--test-concurrency=1",  # the suites script one shared stand-in
            *map(str, suites),
        ],
        timeout=240,
        MEMORI_TARGET=server.target,
        MEMORI_API_KEY=api_key,
        MEMORI_STANDIN_URL=standin.control_url,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"node tests failed:\n{output}\n--- server log ---\n{server.log}"
    skipped = check_summary(result.stdout, output)
    for name, reason in skipped:
        warnings.warn(f"node test skipped: {name}: {reason}", stacklevel=1)
