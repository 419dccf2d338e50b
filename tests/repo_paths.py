"""Repository paths and tool locations shared by the tests that drive external tools.

Kept out of ``conftest.py`` (fixtures live there) and named ``repo_paths`` so that it says
what it holds; tests import it as ``tests.repo_paths`` like the other helpers in ``tests``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
NODE_BIN = ROOT / "node_modules" / ".bin"
GEN = ROOT / "gen"
GEN_PYTHON = GEN / "python"
CLIENT_PY = ROOT / "client_py"
SERVER = ROOT / "server"
BUF = NODE_BIN / "buf"
HADOLINT = VENV_BIN / "hadolint"
PYTHON = sys.executable


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for a tool subprocess: our venv and node bins first on PATH.

    ``buf.gen.yaml`` calls its Python plugin as plain ``python``, so whichever ``python`` is
    first on PATH must be the project's venv, whatever the calling shell had.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), str(NODE_BIN), env.get("PATH", "")])
    env.update(extra)
    return env


def python_env(*pythonpath: Path) -> dict[str, str]:
    """Environment for a child ``python`` whose import path is exactly what the test says.

    Drops inherited ``PYTHON*`` variables (PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, ...) so that
    the developer's shell cannot make an import test pass or fail.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
