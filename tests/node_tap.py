"""Reading `node --test --test-reporter=tap` output: every test ran and passed, or was skipped."""

from __future__ import annotations

import re

_SUMMARY = re.compile(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", re.MULTILINE)
_SKIPPED = re.compile(r"^\s*ok \d+ - (.*) # SKIP (.*)$", re.MULTILINE)


def check_summary(stdout: str, output: str) -> list[tuple[str, str]]:
    """Asserts that tests ran and none failed or was cancelled; returns (test, reason) of the
    skipped ones. `output` is what a failed assertion shows."""
    summary = {name: int(count) for name, count in _SUMMARY.findall(stdout)}
    skipped: list[tuple[str, str]] = _SKIPPED.findall(stdout)
    assert summary.get("pass", 0) > 0, f"no passing node tests reported:\n{output}"
    assert summary.get("fail") == 0, f"node tests failed:\n{output}"
    assert summary.get("cancelled", 0) == 0, f"node tests cancelled:\n{output}"
    assert summary.get("skipped", 0) == len(skipped), output
    assert summary.get("tests") == summary["pass"] + len(skipped), f"not all passed:\n{output}"
    return skipped
