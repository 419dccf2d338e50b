"""The packed @memori-grpc/client installs into an empty project and its quick start runs.

`npm pack` in client_ts (which builds dist/) gives the tarball a user installs. Its runtime
dependencies and openai (the newest and the oldest of the peer range) are packed from this
checkout's node_modules, so the install runs with `npm install --offline` and an empty cache:
nothing is downloaded. The quick start is the one
in docs/typescript-client.md, type-checked (strict, NodeNext) against the packed declarations
(probes make sure they resolve), compiled and run against a real server, followed by a smoke
script (a stream, an error class, the stored history).
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
# What the tarball needs beside it: its dependencies and Node's types for tsc; and openai, in
# the newest and the oldest version of the peer range (node_modules/openai-6.0.0 is an alias).
DEPENDENCIES = ("@connectrpc/connect", "@connectrpc/connect-node", "@bufbuild/protobuf")
TYPES = ("@types/node", "undici-types")
OPENAI_VERSIONS = ("openai", "openai-6.0.0")
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
# Beyond the quick start: a stream, an error class, and the stored history.
_SMOKE = """\
import OpenAI, { BadRequestError } from "openai";
import { Stream } from "openai/streaming";
import { Memori } from "@memori-grpc/client";

const client = new OpenAI();
const memori = new Memori().attribution("smoke-user", "smoke").llm.register(client);
const stream = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "stream please" }],
  stream: true,
});
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
console.log(stream instanceof Stream, text);
const failed = await client.chat.completions
  .create({ model: "", messages: [{ role: "user", content: "x" }] })
  .catch((error) => error);
console.log(failed instanceof BadRequestError, failed.param);
console.log((await memori.session.history()).length);
"""


def npm(*args: str, cwd: Path = ROOT, timeout: float = 120) -> str:
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


def packed(destination: Path, *directories: Path, flags: tuple[str, ...] = ()) -> list[Path]:
    """`npm pack` of each directory (one npm run); the tarballs, in the same order."""
    args = ("pack", "--json", "--pack-destination", str(destination), *flags)
    printed = npm(*args, *map(str, directories))
    report = json.loads(printed[printed.index("[") :])  # after any prepack script's output
    assert len(report) == len(directories), printed
    return [destination / entry["filename"] for entry in report]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packed(tmp_path_factory.mktemp("pack"), CLIENT)[0]


@pytest.fixture(scope="module")
def beside(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tarballs of what the app installs beside the client, packed from node_modules."""
    names = (*OPENAI_VERSIONS, *DEPENDENCIES, *TYPES)
    directories = [ROOT / "node_modules" / name for name in names]
    tarballs = packed(tmp_path_factory.mktemp("beside"), *directories, flags=("--ignore-scripts",))
    return dict(zip(names, tarballs, strict=True))


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
    assert set(manifest["dependencies"]) == set(DEPENDENCIES)


@pytest.mark.parametrize("openai", OPENAI_VERSIONS)
def test_quick_start_runs_from_the_installed_tarball(
    openai: str,
    tarball: Path,
    beside: dict[str, Path],
    services: tuple[ServerProcess, StandinProcess],
    tmp_path: Path,
) -> None:
    server, standin = services
    installed = [tarball, *(beside[name] for name in (openai, *DEPENDENCIES, *TYPES))]
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true, "type": "module"}\n')
    npm(
        "install",
        "--offline",
        "--ignore-scripts",
        "--cache",
        str(tmp_path / "empty-cache"),
        *map(str, installed),
        cwd=app,
    )
    found = _QUICK_START.search(DOCS.read_text())
    assert found is not None, "docs/typescript-client.md has no ```ts block under ## Quick start"
    (app / "quickstart.ts").write_text(found.group(1))
    (app / "probe.ts").write_text(_PROBE)
    (app / "smoke.mjs").write_text(_SMOKE)
    (app / "tsconfig.json").write_text(json.dumps(_TSCONFIG))

    compiled = _node(app, str(ROOT / "node_modules" / "typescript" / "bin" / "tsc"), "-p", ".")
    assert compiled.returncode == 0, f"the quick start does not type-check:\n{compiled.stdout}"
    before = len(standin.requests())
    env = {"MEMORI_TARGET": server.target, "OPENAI_API_KEY": "not-used-for-chat"}
    ran = _node(app, "out/quickstart.js", **env)
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n--- server log ---\n{server.log}"
    reply, session_id = ran.stdout.splitlines()
    assert reply == "echo: When is my birthday?"
    assert _UUID_V4.match(session_id)
    asked = standin.requests()[before:]
    assert [m["content"] for m in asked[-1]["body"]["messages"]] == [
        "My birthday is May 15th.",
        "echo: My birthday is May 15th.",
        "When is my birthday?",
    ]
    smoke = _node(app, "smoke.mjs", **env)
    assert smoke.returncode == 0, f"{smoke.stdout}\n{smoke.stderr}"
    assert smoke.stdout.splitlines() == ["true echo: stream please", "true request.model", "2"]


def _node(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node", path=tool_env()["PATH"])
    assert node is not None, "Node.js is needed for the package test"
    return subprocess.run(
        [node, *args], cwd=cwd, env=tool_env(**env), capture_output=True, text=True, timeout=120
    )
