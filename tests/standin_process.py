"""`python -m standin_upstream` as a subprocess, as the README's offline demo runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from types import TracebackType
from typing import Any, Self

from tests.repo_paths import ROOT

_PREFIX = "standin-upstream listening base_url="


class StandinProcess:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "standin_upstream", "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith(_PREFIX):
            self.process.kill()
            raise RuntimeError(f"stand-in upstream did not start: {line!r}")
        self.base_url = line.removeprefix(_PREFIX)

    def requests(self) -> list[dict[str, Any]]:
        """What the stand-in received (its /_standin/requests control endpoint)."""
        control = self.base_url.removesuffix("/v1") + "/_standin/requests"
        with urllib.request.urlopen(control, timeout=10) as response:
            records = json.loads(response.read())
        assert isinstance(records, list)
        return records

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.process.terminate()
        assert self.process.wait(timeout=10) == 0
