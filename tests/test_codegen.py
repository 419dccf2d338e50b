"""The generated code in gen/ is current, the contract is lint- and format-clean, and the
Python stubs live where they cannot collide with the Memori SDK's top-level ``memori``.

These tests read the checked-in tree and never write to it: ``buf generate`` writes into a
temporary directory only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.repo_paths import BUF, CLIENT_PY, GEN, GEN_PYTHON, PYTHON, ROOT, python_env, tool_env

# Byproducts of importing the generated modules; git ignores them and buf never writes them.
_IGNORED_PARTS = frozenset({"__pycache__"})
_IGNORED_SUFFIXES = frozenset({".pyc"})

# Top-level modules of the `server` extra. The base install (the client) does not have them,
# so `import memori_client` must not pull any of them in. (pydantic is not here: the client
# needs openai, which needs pydantic.)
SERVER_ONLY_MODULES = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "psycopg_pool",
        "pydantic_settings",
        "tiktoken",
        "aiohttp",
        "grpc_health",
        "grpc_reflection",
        "memori_server",
    }
)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root; callers assert on the exit code with the output."""
    return subprocess.run(
        cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=90, check=False
    )


def _tree(root: Path) -> dict[str, bytes]:
    """Map every file under ``root`` (relative POSIX path) to its bytes, minus import litter."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not _IGNORED_PARTS.intersection(path.relative_to(root).parts)
        and path.suffix not in _IGNORED_SUFFIXES
    }


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def test_generated_code_is_current(tmp_path: Path) -> None:
    """gen/ must be exactly what `buf generate` produces from proto/ today.

    `--output` prefixes every `out:` of buf.gen.yaml with the temporary directory, and
    `clean: true` then empties only those prefixed directories, so the checked-in gen/ is
    never touched.
    """
    result = _run([str(BUF), "generate", "--output", str(tmp_path)])
    assert result.returncode == 0, f"buf generate failed:\n{_output(result)}"

    fresh = _tree(tmp_path / "gen")
    assert fresh, f"buf generate wrote nothing under {tmp_path / 'gen'}:\n{_output(result)}"
    checked_in = _tree(GEN)

    missing = sorted(fresh.keys() - checked_in.keys())
    extra = sorted(checked_in.keys() - fresh.keys())
    changed = sorted(k for k in fresh.keys() & checked_in.keys() if fresh[k] != checked_in[k])
    problems = (
        [f"  missing: gen/{name}" for name in missing]
        + [f"  not generated (stale): gen/{name}" for name in extra]
        + [f"  out of date: gen/{name}" for name in changed]
    )
    assert not problems, (
        "gen/ does not match `buf generate` for proto/:\n"
        + "\n".join(problems)
        + "\nRun `./dev generate` and commit the result."
    )


@pytest.mark.parametrize(
    "args",
    [["lint"], ["format", "-d", "--exit-code"]],
    ids=["buf-lint", "buf-format"],
)
def test_contract_is_clean(args: list[str]) -> None:
    """The contract passes buf lint STANDARD and is already formatted (DESIGN §2)."""
    result = _run([str(BUF), *args])
    assert result.returncode == 0, f"`buf {' '.join(args)}` is not clean:\n{_output(result)}"


def _isolated_python(
    code: str, cwd: Path, *paths: Path, args: tuple[str, ...] | list[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run `code` with exactly `paths` importable: no site-packages path tricks, no cwd."""
    return subprocess.run(
        [PYTHON, "-P", "-s", "-c", code, *args],
        cwd=cwd,
        env=python_env(*paths),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_SHADOW_PROBE = """
import json, sys
import memori_proto.v1.common_pb2 as common_pb2
import memori_proto.v1.session_pb2 as session_pb2
import memori_proto.v1.session_pb2_grpc as session_pb2_grpc
stubs_imported_memori = "memori" in sys.modules
import memori
print(json.dumps({
    "stubs_imported_memori": stubs_imported_memori,
    "memori_is_fake": getattr(memori, "FAKE_MEMORI_SDK", False),
    "memori_file": memori.__file__,
    "files": [common_pb2.__file__, session_pb2.__file__, session_pb2_grpc.__file__],
    "packages": [common_pb2.DESCRIPTOR.package, session_pb2.DESCRIPTOR.package],
    "has_stub": hasattr(session_pb2_grpc, "SessionServiceStub"),
}))
"""


def test_stubs_import_next_to_a_memori_package(tmp_path: Path) -> None:
    """The stubs must work where the Memori SDK (top-level `memori`) is installed (DESIGN §2).

    A stand-in `memori` package comes first on the import path; the stubs must still import,
    must not import `memori` themselves, and `import memori` must still find the stand-in.
    """
    sdk = tmp_path / "sdk"
    (sdk / "memori").mkdir(parents=True)
    (sdk / "memori" / "__init__.py").write_text("FAKE_MEMORI_SDK = True\n")
    empty_cwd = tmp_path / "cwd"
    empty_cwd.mkdir()

    result = _isolated_python(_SHADOW_PROBE, empty_cwd, sdk, GEN_PYTHON)
    assert result.returncode == 0, f"stubs do not import next to `memori`:\n{_output(result)}"
    probe = json.loads(result.stdout)
    assert not probe["stubs_imported_memori"], "the generated stubs import top-level `memori`"
    assert probe["memori_is_fake"], f"`import memori` found {probe['memori_file']}"
    assert all(Path(f).is_relative_to(GEN_PYTHON) for f in probe["files"]), probe["files"]
    assert probe["packages"] == ["memori.v1", "memori.v1"], "the wire package must stay memori.v1"
    assert probe["has_stub"], "session_pb2_grpc lacks SessionServiceStub"


_CLIENT_PROBE = """
import importlib.abc, json, sys

BLOCKED = set(sys.argv[1].split(","))


class ServerExtraMissing(importlib.abc.MetaPathFinder):
    # As in a base install: the server extra's modules cannot be imported.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, ServerExtraMissing())
import openai
import memori_client

client = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
memori = memori_client.Memori("127.0.0.1:9").attribution("user-1").llm.register(client)
memori.close()
print(json.dumps({
    "file": memori_client.__file__,
    "modules": sorted({name.partition(".")[0] for name in sys.modules}),
}))
"""


def test_client_works_without_server_dependencies(tmp_path: Path) -> None:
    """`pip install memori-grpc` (no extras) lacks the server's libraries: the client must
    import and register a client with all of them unimportable."""
    result = _isolated_python(
        _CLIENT_PROBE, tmp_path, CLIENT_PY, GEN_PYTHON, args=[",".join(SERVER_ONLY_MODULES)]
    )
    assert result.returncode == 0, f"`import memori_client` failed:\n{_output(result)}"
    probe = json.loads(result.stdout)
    assert Path(probe["file"]).is_relative_to(CLIENT_PY), probe["file"]
    leaked = sorted(SERVER_ONLY_MODULES.intersection(probe["modules"]))
    assert not leaked, f"`import memori_client` imports server-only modules: {leaked}"
