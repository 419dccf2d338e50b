"""The packed @memori-grpc/client installs into an empty project and its quick start runs.

`npm pack` in client_ts (which builds dist/) gives the tarball a user installs. Its runtime
dependencies and openai are packed from this checkout's node_modules, so the install runs with
`npm install --offline` and an empty cache: nothing is downloaded. The quick start is the one
in docs/typescript-client.md, type-checked (strict, NodeNext) against the packed declarations
(probes make sure they resolve), compiled and run against a real server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.repo_paths import ROOT, tool_env
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

DOCS = ROOT / "docs" / "typescript-client.md"
CLIENT = ROOT / "client_ts"
# What the tarball needs beside it: its dependencies, openai, and Node's types for tsc.
BESIDE = ("openai", "@connectrpc/connect", "@connectrpc/connect-node", "@bufbuild/protobuf")
TYPES = ("@types/node", "undici-types")
_QUICK_START = re.compile(r"^## Quick start\n.*?^```ts\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "strict": True,
        "skipLibCheck": True,
        "types": ["node"],
        "outDir": "out",
    },
    "files": ["quickstart.ts", "probe.ts"],
}
# With skipLibCheck, declarations that failed to resolve would turn into `any` silently; these
# lines are type errors only while the packed declarations really resolve.
_PROBE = """\
import { Memori, SessionManager } from "@memori-grpc/client";
const memori = new Memori({ target: "localhost:1" });
const manager: SessionManager = memori.session;
// @ts-expect-error a session id is a string
memori.setSession(42);
// @ts-expect-error there is no such option
new Memori({ targte: "x" });
// @ts-expect-error recent() resolves to SessionInfo[]
const wrong: Promise<string> = manager.recent();
export { wrong };
"""


def npm(*args: str, cwd: Path, timeout: float = 120) -> str:
    executable = shutil.which("npm", path=tool_env()["PATH"])
    assert executable is not None, "npm is needed for the package test"
    result = subprocess.run(
        [executable, "--no-audit", "--no-fund", "--loglevel=error", *args],
        cwd=cwd,
        env=tool_env(npm_config_update_notifier="false"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def packed(directory: Path, destination: Path, *flags: str) -> Path:
    names = npm("pack", "--pack-destination", str(destination), *flags, str(directory), cwd=ROOT)
    return destination / names.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packed(CLIENT, tmp_path_factory.mktemp("pack"))


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, StandinProcess]]:
    database = tmp_path_factory.mktemp("ts-package") / "memori.db"
    with (
        StandinProcess() as standin,
        ServerProcess(f"sqlite:///{database}", "--upstream-base-url", standin.base_url) as server,
    ):
        yield server, standin


def test_tarball_holds_the_build_and_the_generated_code(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        manifest = json.load(archive.extractfile("package/package.json"))  # type: ignore[arg-type]
    assert {
        "package/dist/index.js",
        "package/dist/index.d.ts",
        "package/dist/gen/memori/v1/chat_pb.js",
        "package/dist/gen/memori/v1/session_pb.d.ts",
        "package/README.md",
    } <= names
    assert not [name for name in names if "/src/" in name or name.endswith((".ts.map", "stamp"))]
    assert manifest["name"] == "@memori-grpc/client"
    assert manifest["type"] == "module"
    assert manifest["peerDependencies"] == {"openai": ">=6.0.0 <7"}
    assert set(manifest["dependencies"]) == set(BESIDE) - {"openai"}


def test_quick_start_runs_from_the_installed_tarball(
    tarball: Path, services: tuple[ServerProcess, StandinProcess], tmp_path: Path
) -> None:
    server, standin = services
    beside = [packed(ROOT / "node_modules" / name, tmp_path, "--ignore-scripts") for name in BESIDE]
    types = [packed(ROOT / "node_modules" / name, tmp_path, "--ignore-scripts") for name in TYPES]
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true, "type": "module"}\n')
    npm(
        "install",
        "--offline",
        "--ignore-scripts",
        "--cache",
        str(tmp_path / "empty-cache"),
        *map(str, [tarball, *beside, *types]),
        cwd=app,
    )
    found = _QUICK_START.search(DOCS.read_text())
    assert found is not None, "docs/typescript-client.md has no ```ts block under ## Quick start"
    (app / "quickstart.ts").write_text(found.group(1))
    (app / "probe.ts").write_text(_PROBE)
    (app / "tsconfig.json").write_text(json.dumps(_TSCONFIG))

    node = shutil.which("node", path=tool_env()["PATH"])
    assert node is not None
    tsc = str(ROOT / "node_modules" / "typescript" / "bin" / "tsc")
    compiled = subprocess.run(
        [node, tsc, "-p", "tsconfig.json"], cwd=app, capture_output=True, text=True, timeout=120
    )
    assert compiled.returncode == 0, f"the quick start does not type-check:\n{compiled.stdout}"

    standin_before = len(standin.requests())
    ran = subprocess.run(
        [node, "out/quickstart.js"],
        cwd=app,
        env=tool_env(MEMORI_TARGET=server.target, OPENAI_API_KEY="not-used-for-chat"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n--- server log ---\n{server.log}"
    reply, session_id = ran.stdout.splitlines()
    assert reply == "echo: When is my birthday?"
    assert _UUID_V4.match(session_id)
    asked = standin.requests()[standin_before:]
    assert [m["content"] for m in asked[-1]["body"]["messages"]] == [
        "My birthday is May 15th.",
        "echo: My birthday is May 15th.",
        "When is my birthday?",
    ]
