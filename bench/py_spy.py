"""Sample a server process with py-spy while a benchmark window runs (`--py-spy DIR`).

py-spy reads the process's memory from outside (no change to the server, a few per cent of
its speed); it needs ptrace permission over the process: the same user with
`kernel.yama.ptrace_scope` 0, or root (in a container, `--cap-add SYS_PTRACE`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

RATE = 250  # samples per second


def py_spy_binary() -> str:
    """py-spy from this environment (a dev dependency), else from PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: ./dev test (or uv sync) installs it")
    return found


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` into `output` (collapsed stacks, one per line,
    which `python -m bench.stacks` summarizes and flamegraph tools draw)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy_binary(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(sampling: subprocess.Popen[bytes], output: Path) -> None:
    _, errors = sampling.communicate(timeout=120)
    if sampling.returncode != 0 or not output.exists():
        message = errors.decode(errors="replace").strip()
        print(f"py-spy could not sample the server ({message})", file=sys.stderr)
    else:
        print(f"py-spy: {output} (python -m bench.stacks {output})", flush=True)
