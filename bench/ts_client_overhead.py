"""The TypeScript client's own cost: `create` through @memori-grpc/client against the same
Complete RPC through the raw Connect stub, both in one Node.js process
(bench/ts_client_overhead.ts, which describes the method). Goal: p50 ratio <= 1.1x.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence

from bench.client_overhead import Result
from bench.client_overhead import format_table as _format_table
from bench.session_get import Latencies
from tests.repo_paths import NODE_BIN, ROOT, tool_env

SCRIPT = ROOT / "bench" / "ts_client_overhead.ts"


def measure(target: str, backend: str, calls: int, warmup: int) -> Result:
    node = shutil.which("node", path=tool_env()["PATH"])
    if node is None or not (NODE_BIN / "tsx").exists():
        raise RuntimeError("ts_client_overhead needs Node.js and node_modules: run ./dev setup")
    result = subprocess.run(
        [node, "--import", "tsx", str(SCRIPT), str(calls), str(warmup)],
        cwd=ROOT,
        env=tool_env(MEMORI_TARGET=target),
        capture_output=True,
        text=True,
        timeout=max(120.0, calls * 0.1),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} failed:\n{result.stdout}\n{result.stderr}")
    samples = json.loads(result.stdout.strip().splitlines()[-1])
    return Result(
        backend,
        "node",
        Latencies("client", samples["client"]),
        Latencies("raw stub", samples["raw"]),
    )


def format_table(results: Sequence[Result]) -> str:
    return _format_table(results)
