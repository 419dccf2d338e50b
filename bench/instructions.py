"""The server's user-space instructions per completion, counted by callgrind: a steady figure
where CPU timings on this shared machine move by 10 to 30 % between runs of the same code.

    python -m bench.instructions [--calls 400] [--callers 8] [--database-url postgresql://...]

hot_path's heaviest case: callers with their own `Memori` and `AsyncOpenAI` (the SDK's
default retries, so each call carries a request id) continue sessions of about 300 stored
messages on SQLite (or, given `--database-url`, on a fresh database next to that
PostgreSQL one), against the stand-in upstream. The server runs under
`valgrind --tool=callgrind` with instrumentation off until the warm-up calls are done; it is
on for the measured calls only. The count leaves out the kernel (system calls, the disk's
sync) and does not weigh cache misses, so it is no CPU time: it compares two versions of
the code (the same count twice for the same code and inputs, whatever else the machine is
doing), and says where user-space work goes (`callgrind_annotate` on the kept file).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import openai

from bench import hot_path
from bench.launch import ROOT, StandinProcess, postgres_database, sqlite_database
from tests.server_process import ServerProcess

STORED = 300  # hot_path's window of about 300 messages
WARMUP_CALLS = 3  # per caller, before counting
START_SECONDS = 900.0  # valgrind starts the server slowly


async def _calls(
    target: str, sessions: list[list[str]], per_caller: int, between: Sequence[str]
) -> None:
    """`per_caller` calls per caller after the warm-up; `between` runs (callgrind_control)
    before and after them."""
    apps, memoris = hot_path.memori_apps(target, len(sessions), openai.DEFAULT_MAX_RETRIES)

    async def caller(index: int, calls: int, first: int) -> None:
        owned = sessions[index]
        for turn in range(first, first + calls):
            memoris[index].set_session(owned[turn % len(owned)])
            await apps[index].chat.completions.create(
                model=hot_path.MODEL,
                messages=[{"role": "user", "content": f"question {turn} of caller {index}"}],
            )

    try:
        await asyncio.gather(*(caller(i, WARMUP_CALLS, 0) for i in range(len(sessions))))
        _control(between[0])
        await asyncio.gather(*(caller(i, per_caller, WARMUP_CALLS) for i in range(len(sessions))))
        _control(between[1])
    finally:
        for memori in memoris:
            await memori.aclose()
        for app in apps:
            await app.close()


def _control(command: str) -> None:
    subprocess.run(command.split(), check=True, capture_output=True)


def _total(outputs: Path) -> int:
    """The largest `totals:` line among callgrind's dumps (the one after the measured calls)."""
    found = 0
    for dump in outputs.parent.glob(outputs.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                found = max(found, int(line.split()[1]))
    return found


@contextmanager
def _database(tmp: Path, postgresql_url: str | None) -> Iterator[str]:
    """A fresh database: a SQLite file in `tmp`, or one next to `postgresql_url`'s."""
    database = sqlite_database(tmp) if postgresql_url is None else postgres_database(postgresql_url)
    with database as url:
        yield url


def measure(
    calls: int, callers: int, keep: Path | None = None, postgresql_url: str | None = None
) -> float:
    """Instructions per completion in the server (user space), over `calls` calls."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind (callgrind) is not installed")
    per_caller = max(1, calls // callers)
    with (
        tempfile.TemporaryDirectory(prefix="memori-instructions-") as tmp,
        _database(Path(tmp), postgresql_url) as url,
    ):
        sessions = asyncio.run(hot_path.seed(url, callers))[STORED]
        outputs = Path(tmp) / "callgrind.out"
        program = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={outputs}",
            sys.executable,
            "-m",
            "bench.bench_server",
        )
        with StandinProcess() as upstream:
            server = ServerProcess(
                url, "--upstream-base-url", upstream.base_url, cwd=ROOT, program=program
            )
            try:
                target = server.wait_ready(START_SECONDS)
                pid = server.process.pid
                between = (
                    f"callgrind_control -i on {pid}",
                    f"callgrind_control -i off {pid}",
                )
                asyncio.run(_calls(target, sessions, per_caller, between))
                _control(f"callgrind_control -d {pid}")
            finally:
                server.stop()
        total = _total(outputs)
        if keep is not None:
            dumps = sorted(outputs.parent.glob(outputs.name + "*"))
            shutil.copy(max(dumps, key=lambda dump: dump.stat().st_size), keep)
    if total <= 0:
        raise RuntimeError("callgrind counted nothing: was instrumentation switched on?")
    return total / (per_caller * callers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--calls", type=int, default=400, help="measured calls in all")
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers")
    parser.add_argument("--keep", type=Path, help="copy callgrind's output here")
    parser.add_argument(
        "--database-url",
        help="count on a fresh database next to this PostgreSQL one (default: SQLite)",
    )
    args = parser.parse_args(argv)
    per_completion = measure(args.calls, args.callers, args.keep, args.database_url)
    backend = "postgresql" if args.database_url else "sqlite"
    print(
        f"{backend} {STORED} messages, request ids: {per_completion / 1e6:.3f} M instructions "
        f"per completion in the server (user space), {args.callers} callers",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
