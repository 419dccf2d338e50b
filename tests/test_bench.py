"""`python -m bench` still runs end to end: a few calls, and the table it prints is complete.

Only a smoke test: it checks that the benchmark server (MemoriServer plus the no-op handler)
starts, that both RPC kinds answer correctly (the benchmark verifies every response) and that
a ratio is reported. It asserts nothing about speed.
"""

from __future__ import annotations

import re
import subprocess

from tests.repo_paths import PYTHON, ROOT, python_env

_ROW = re.compile(r"^sqlite\s+(Get|no-op)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", re.M)
_RATIO = re.compile(r"^sqlite\s+Get/no-op\s+([\d.]+)x\s+([\d.]+)x", re.M)


def test_bench_runs_and_reports_ratios() -> None:
    result = subprocess.run(
        [PYTHON, "-m", "bench", "--calls", "40", "--warmup", "5", "--database-url", ""],
        cwd=ROOT,
        env={**python_env(ROOT), "MEMORI_TEST_DATABASE_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    rows = {
        kind: (int(calls), float(p50))
        for kind, calls, p50, _p99, _mean in _ROW.findall(result.stdout)
    }
    assert rows.keys() == {"Get", "no-op"}, output
    assert all(calls == 40 and p50 > 0 for calls, p50 in rows.values()), output
    ratio = _RATIO.search(result.stdout)
    assert ratio is not None, output
    measured = rows["Get"][1] / rows["no-op"][1]  # from the table's rounded p50 values
    assert abs(float(ratio.group(1)) - measured) <= 0.01 + 0.01 * measured, output
