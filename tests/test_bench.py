"""`python -m bench --quick` still runs end to end, and the tables it prints are complete.

Only a smoke test, on SQLite: it checks that the benchmark server (MemoriServer plus the no-op
handler) and the stand-in upstream start, that every path answers correctly (the benchmarks
verify each response, and that the server sees the seeded history) and that every figure
and ratio is reported. It asserts nothing about speed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bench import fuzz
from tests.databases import PG_ENV, postgres_admin_url
from tests.fuzz_cases import FAMILIES
from tests.repo_paths import PYTHON, ROOT, python_env

_GET_ROW = re.compile(r"^sqlite\s+(Get|no-op)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", re.M)
_GET_RATIO = re.compile(r"^sqlite\s+Get/no-op\s+([\d.]+)x\s+([\d.]+)x", re.M)
_CHAT_ROW = re.compile(
    r"^sqlite\s+(\d+)\s+(memori|direct|direct full|raw full)\s+(\d+)"
    r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$",
    re.M,
)
_CHAT_RATIO = re.compile(
    r"^sqlite\s+(\d+)\s+memori/(direct|direct full|raw full)"
    r"\s+([\d.]+)x\s+([\d.]+)x\s+([\d.]+)x(.*)$",
    re.M,
)
_RATE_ROW = re.compile(r"^sqlite\s+(\d+)\s+(memori|direct)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s*$", re.M)
_RATE_RATIO = re.compile(
    r"^sqlite\s+(\d+)\s+memori/direct\s+([\d.]+)x\s+((?:meets|MISSES) the goal.*)$", re.M
)


_CLIENT_ROW = re.compile(
    r"^sqlite\s+(sync|async)\s+(client|raw stub)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$",
    re.M,
)
_CLIENT_RATIO = re.compile(
    r"^sqlite\s+(sync|async)\s+client/raw\s+([\d.]+)x\s+([\d.]+)x\s+([\d.]+)x\s+p50", re.M
)


_FUZZ_TOTAL = re.compile(r"^sqlite\s+total\s+(\d+) cases\s+(\d+) calls", re.M)
_FUZZ_FAMILY = re.compile(
    r"^sqlite {6}(?!total)(\S+(?: \S+)?)\s+(\d+) cases\s+(\d+) calls  (.*)$", re.M
)
_FUZZ_RPC = re.compile(r"^sqlite {8}(\w+(?:\.\w+)+)\s+(\d+) calls  (.*)$", re.M)


def _close(printed: float, expected: float) -> bool:
    """A ratio as printed (2 decimals) against one computed from the table's rounded values."""
    return abs(printed - expected) <= 0.01 + 0.01 * expected


def _bench_quick(*only: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    """`python -m bench --quick` on SQLite alone, with these benchmarks."""
    return subprocess.run(
        [PYTHON, "-m", "bench", "--quick", "--database-url", "", *(f"--only={n}" for n in only)],
        cwd=ROOT,
        env={**python_env(ROOT), "MEMORI_TEST_DATABASE_URL": ""},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def bench_output() -> str:
    result = _bench_quick("session_get", "chat_complete", "client_overhead", "ts_client_overhead")
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    return result.stdout


def test_session_get_reports_ratios(bench_output: str) -> None:
    rows = {
        kind: (int(calls), float(p50))
        for kind, calls, p50, _p99, _mean in _GET_ROW.findall(bench_output)
    }
    assert rows.keys() == {"Get", "no-op"}, bench_output
    assert all(calls == 40 and p50 > 0 for calls, p50 in rows.values()), bench_output
    ratio = _GET_RATIO.search(bench_output)
    assert ratio is not None, bench_output
    measured = rows["Get"][1] / rows["no-op"][1]  # from the table's rounded p50 values
    assert _close(float(ratio.group(1)), measured), bench_output


def test_chat_complete_reports_overhead_for_both_history_sizes(bench_output: str) -> None:
    rows = {
        (int(stored), path): (int(calls), float(p50), float(p99), float(sent))
        for stored, path, calls, p50, p99, _mean, sent in _CHAT_ROW.findall(bench_output)
    }
    expected_paths = {"memori", "direct", "direct full", "raw full"}
    assert rows.keys() == {(n, p) for n in (0, 10, 100_000) for p in expected_paths}, bench_output
    # --quick: 2 measured rounds of 10 calls per path and history size
    assert all(calls == 20 and p50 > 0 for calls, p50, _, _ in rows.values()), bench_output
    # Only the newest turns within the token budget go upstream, far fewer than 100,000;
    # each 10-message call finds exactly 10 stored messages and sends one more.
    large_sent = rows[(100_000, "memori")][3]
    assert rows[(10, "memori")][3] == 11.0, bench_output
    assert rows[(0, "memori")][3] == 1.0, bench_output  # a new session: the message alone
    assert 11 < large_sent < 1000, bench_output
    ratios = {
        (int(stored), baseline): (float(p50), float(p99), goal)
        for stored, baseline, p50, p99, _mean, goal in _CHAT_RATIO.findall(bench_output)
    }
    baselines = ("direct", "direct full", "raw full")
    assert ratios.keys() == {(n, b) for n in (0, 10, 100_000) for b in baselines}
    for (stored, baseline), (p50_ratio, p99_ratio, _goal) in ratios.items():
        memori = rows[(stored, "memori")]
        other = rows[(stored, baseline)]
        assert _close(p50_ratio, memori[1] / other[1]), bench_output
        assert _close(p99_ratio, memori[2] / other[2]), bench_output
    assert "goal <= 1.8x: p50" in ratios[(0, "direct")][2], bench_output
    assert "goal <= 1.8x: p50" in ratios[(10, "direct")][2], bench_output
    assert "goal <= 2.2x: p50" in ratios[(100_000, "direct")][2], bench_output


def test_chat_complete_reports_throughput_at_both_concurrencies(bench_output: str) -> None:
    rates = {
        (int(callers), path): (int(calls), float(per_second))
        for callers, path, calls, _seconds, per_second in _RATE_ROW.findall(bench_output)
    }
    assert rates.keys() == {(n, p) for n in (32, 256) for p in ("memori", "direct")}
    assert all(calls > 0 for calls, _ in rates.values()), bench_output
    ratios = {
        int(callers): (float(r), text) for callers, r, text in _RATE_RATIO.findall(bench_output)
    }
    assert ratios.keys() == {32, 256}, bench_output
    for callers, (ratio, text) in ratios.items():
        measured = rates[(callers, "memori")][1] / rates[(callers, "direct")][1]
        assert _close(ratio, measured), bench_output
        assert "the goal of >= 0.7x" in text, bench_output


def test_client_overhead_reports_both_modes(bench_output: str) -> None:
    rows = {
        (mode, path): (int(calls), float(p50))
        for mode, path, calls, p50, _p99, _mean in _CLIENT_ROW.findall(bench_output)
    }
    assert rows.keys() == {(m, p) for m in ("sync", "async") for p in ("client", "raw stub")}
    assert all(calls == 40 and p50 > 0 for calls, p50 in rows.values()), bench_output
    ratios = {mode: float(p50) for mode, p50, _p99, _mean in _CLIENT_RATIO.findall(bench_output)}
    assert ratios.keys() == {"sync", "async"}, bench_output
    for mode, ratio in ratios.items():
        assert _close(ratio, rows[(mode, "client")][1] / rows[(mode, "raw stub")][1])


def test_ts_client_overhead_reports_the_node_client(bench_output: str) -> None:
    rows = {
        path: (int(calls), float(p50))
        for path, calls, p50 in re.findall(
            r"^sqlite\s+node\s+(client|raw stub)\s+(\d+)\s+([\d.]+)", bench_output, re.M
        )
    }
    assert rows.keys() == {"client", "raw stub"}, bench_output
    assert all(calls == 40 and p50 > 0 for calls, p50 in rows.values()), bench_output
    ratio = re.search(
        r"^sqlite\s+node\s+client/raw\s+([\d.]+)x.*p50 (meets|MISSES)", bench_output, re.M
    )
    assert ratio is not None, bench_output
    assert _close(float(ratio.group(1)), rows["client"][1] / rows["raw stub"][1]), bench_output


def test_fuzz_counts_each_status_and_finds_no_internal() -> None:
    """`--only fuzz --quick`: every family and RPC gets cases, each call is counted under
    one status code, none is INTERNAL/UNKNOWN (the exit status says so too), and the server
    still serves at the end."""
    result = _bench_quick("fuzz")
    output = f"{result.stdout}\n{result.stderr}"
    total = _FUZZ_TOTAL.search(result.stdout)
    assert total is not None, output
    assert int(total.group(1)) == fuzz.QUICK_CASES, output
    families = {
        name: (int(cases), int(calls))
        for name, cases, calls, _ in _FUZZ_FAMILY.findall(result.stdout)
    }
    assert families.keys() == FAMILIES.keys(), output
    assert all(0 < cases <= calls for cases, calls in families.values()), output
    rpcs = {label for label, _calls, _codes in _FUZZ_RPC.findall(result.stdout)}
    assert {rpc.label for _case, listed in FAMILIES.values() for rpc in listed} <= rpcs, output
    for _label, calls, codes in _FUZZ_RPC.findall(result.stdout):
        counted = re.findall(r"([A-Z_]+) (\d+)", codes)
        assert sum(int(count) for _code, count in counted) == int(calls), output
    assert re.search(r"^sqlite\s+INTERNAL/UNKNOWN: 0 \(goal 0\)$", result.stdout, re.M), output
    assert re.search(r"^sqlite\s+still serving: yes", result.stdout, re.M), output
    assert result.returncode == 0, output


_HEALTH_ROW = re.compile(
    r"^sqlite\s+(idle|loaded)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", re.M
)
_HEALTH_RATIO = re.compile(
    r"^sqlite\s+load/idle\s+([\d.]+)x\s+([\d.]+)x\s+(\d+) big calls; p99 (meets|MISSES)", re.M
)


def test_health_under_load_reports_both_phases() -> None:
    """`--only health_under_load --quick`: health checks ran idle and while the big calls
    ran (at least one of which finished), and the ratios are printed."""
    result = _bench_quick("health_under_load")
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    rows = {phase: int(checks) for phase, checks, *_ in _HEALTH_ROW.findall(result.stdout)}
    assert rows.keys() == {"idle", "loaded"}, output
    assert all(checks > 10 for checks in rows.values()), output
    ratio = _HEALTH_RATIO.search(result.stdout)
    assert ratio is not None, output
    assert int(ratio.group(3)) > 0, output


_LIFECYCLE_RECORD = re.compile(
    r"^sqlite\s+stream record: (\d+) bytes for (\d+) streamed tokens = ([\d.]+) bytes/token "
    r"\(raw chunks kept before: ([\d.]+) bytes/token",
    re.M,
)
_LIFECYCLE_ERASE = re.compile(r"^sqlite\s+erase: (\d+) messages in 10 sessions in (\d+) ms", re.M)
_LIFECYCLE_SYNC = re.compile(r"^sqlite\s+Complete p50 with synchronous=full ([\d.]+) ms", re.M)


def test_data_lifecycle_reports_records_erasure_and_commit_cost() -> None:
    result = _bench_quick("data_lifecycle")
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    record = _LIFECYCLE_RECORD.search(result.stdout)
    assert record is not None, output
    assert int(record.group(2)) >= 900, output  # about a thousand streamed tokens
    assert float(record.group(3)) < float(record.group(4)), output
    erase = _LIFECYCLE_ERASE.search(result.stdout)
    assert erase is not None, output
    assert int(erase.group(1)) == 2000, output
    assert _LIFECYCLE_SYNC.search(result.stdout) is not None, output


_MEMORY_RECALL = re.compile(
    r"^1 recall adds <= 15 ms p50 to Complete\s+([+-][\d.]+) ms p50 \(([\d.]+)x\); "
    r"p99 [+-][\d.]+ ms \([\d.]+x\)\s+(meets|MISSES)$",
    re.M,
)
_MEMORY_CALLS = re.compile(
    r"^  (Complete, recall on|Complete, recall off|MemoryService.Search alone)\s+"
    r"p50 ([\d.]+) ms  p99 ([\d.]+) ms  (\d+) calls(.*)$",
    re.M,
)
_MEMORY_INDEX = re.compile(
    r"^2 indexing >= 100 messages/s, duty ([\d.]+)( \(default\))?\s+([\d.]+) messages/s: "
    r"(\d+) in ([\d.]+) s "
    r"\(stored in [\d.]+ s\); server CPU ([\d.]+) cores, [\d.]+ ms a message\s+(meets|MISSES)$",
    re.M,
)
_MEMORY_BUSY = re.compile(
    r"^3 Complete p99 while indexing <= 1.2x idle\s+([\d.]+)x: busy ([\d.]+) ms, "
    r"idle ([\d.]+) ms \(median p99 of 1 windows of 10; .*\)\s+(meets|MISSES)$",
    re.M,
)
_MEMORY_RSS = re.compile(
    r"^4 server RSS with the model \(reported\)\s+startup (\d+) MiB with --memory, (\d+) "
    r"without \([+-]\d+\); loaded (\d+) and (\d+) MiB \([+-]\d+\)\s+reported$",
    re.M,
)


def test_hot_path_reports_cpu_and_throughput_per_window() -> None:
    """`--only hot_path --quick`: each window has a memori and a direct row, the server's CPU
    per completion, and the memori/direct row with its CPU share and verdicts."""
    result = _bench_quick("hot_path")
    assert result.returncode == 0, result.stdout + result.stderr
    for stored in ("0", "10", "300"):
        memori = re.search(
            rf"^sqlite\s+{stored}\s+memori\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$",
            result.stdout,
            re.MULTILINE,
        )
        assert memori is not None, result.stdout
        assert int(memori.group(1)) > 0
        assert float(memori.group(3)) > 0  # server cpu ms per completion
        summary = re.search(
            rf"^sqlite\s+{stored}\s+memori/direct\s+([\d.]+)x\s+server cpu ([\d.]+)x "
            r"a direct request's; .*throughput (meets|MISSES)",
            result.stdout,
            re.MULTILINE,
        )
        assert summary is not None, result.stdout
        assert float(summary.group(2)) > 0
    assert re.search(
        r"^sqlite\s+300\s+memori/direct.*server cpu (meets|MISSES) the goal",
        result.stdout,
        re.MULTILINE,
    )
    # The same window without request ids, for comparison: measured, with no verdict.
    assert re.search(
        r"^sqlite\s+300\s+no id\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+$", result.stdout, re.M
    )
    assert re.search(
        r"^sqlite\s+300\s+no id/direct\s+[\d.]+x\s+server cpu [\d.]+x a direct request's$",
        result.stdout,
        re.MULTILINE,
    )


def test_memory_perf_reports_every_goal() -> None:
    """`--only memory_perf --quick` (200 messages, a few calls): servers with and without
    --memory start, recall recalls, indexing finishes at both duties, and every goal's figure
    and verdict is printed, with where a search's time goes."""
    result = _bench_quick("memory_perf", timeout=300)
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert "memory_perf: sqlite: 200 messages (4 sessions x 50) for one entity" in output
    recall = _MEMORY_RECALL.search(result.stdout)
    assert recall is not None, output
    calls = {
        name: (float(p50), int(count), rest)
        for name, p50, _p99, count, rest in _MEMORY_CALLS.findall(result.stdout)
    }
    assert calls.keys() == {
        "Complete, recall on",
        "Complete, recall off",
        "MemoryService.Search alone",
    }, output
    assert all(count == 10 for _p50, count, _rest in calls.values()), output
    memories = re.search(r"([\d.]+) memories a call", calls["Complete, recall on"][2])
    assert memories is not None, output
    assert float(memories.group(1)) > 0, output
    on, off = calls["Complete, recall on"][0], calls["Complete, recall off"][0]
    assert abs(float(recall.group(1)) - (on - off)) <= 0.02, output
    assert _close(float(recall.group(2)), on / off), output
    indexing = {
        (duty, bool(default)): int(messages)
        for duty, default, _rate, messages, *_ in _MEMORY_INDEX.findall(output)
    }
    assert sorted(duty for duty, _ in indexing) == ["0.5", "1"], output
    assert sum(default for _, default in indexing) == 1, output  # the default duty is marked
    assert set(indexing.values()) == {200}, output
    busy = _MEMORY_BUSY.search(result.stdout)
    assert busy is not None, output
    assert _close(float(busy.group(1)), float(busy.group(2)) / float(busy.group(3))), output
    assert re.search(r"^  idle windows\s+p99 [\d.]+ ms; p50 [\d.]+ ms; pending", output, re.M)
    assert re.search(r"^  busy windows\s+p99 [\d.]+ ms; p50 [\d.]+ ms; pending", output, re.M)
    rss = _MEMORY_RSS.search(result.stdout)
    assert rss is not None, output
    startup_with, startup_without = int(rss.group(1)), int(rss.group(2))
    assert startup_with > startup_without + 50, output  # the model is loaded
    breakdown = re.search(
        r"^where a search's time goes .*: query embedding ([\d.]+), ", output, re.M
    )
    assert breakdown is not None, output
    assert float(breakdown.group(1)) > 0, output


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_instructions_counts_the_server_under_callgrind(tmp_path: Path, backend: str) -> None:
    """`python -m bench.instructions`: a positive count per completion, and the callgrind
    output kept, whose totals are the measured calls' (instrumentation was on for them);
    on SQLite, and on PostgreSQL with `--database-url` when the suite has one."""
    database: list[str] = []
    if backend == "postgresql":
        admin_url = postgres_admin_url()
        if admin_url is None:
            pytest.skip(f"set {PG_ENV} to run against PostgreSQL")
        database = ["--database-url", admin_url]
    kept = tmp_path / "server.callgrind"
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.instructions",
            "--calls",
            "16",
            "--callers",
            "4",
            "--keep",
            str(kept),
            *database,
        ],
        cwd=ROOT,
        env=python_env(ROOT),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(
        rf"^{backend} 300 messages, request ids: ([\d.]+) M instructions per completion in "
        r"the server \(user space\), 4 callers$",
        result.stdout,
        re.MULTILINE,
    )
    assert found is not None, result.stdout
    per_completion = float(found.group(1)) * 1e6
    totals = [
        int(line.split()[1]) for line in kept.read_text().splitlines() if line.startswith("totals:")
    ]
    assert totals
    assert totals[0] == pytest.approx(per_completion * 16, rel=0.01)
    # More than a no-op: a completion runs the handler, the store and the upstream call.
    assert per_completion > 500_000
