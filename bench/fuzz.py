"""The fuzz at scale: 10,000 cases (default) against the server process of each database.

The same four families of input as the test suite's slice (tests/test_fuzz_rpcs.py), made
by tests/fuzz_strategies.py and sent by tests/fuzz_cases.py: structured requests to every
RPC (SessionService, ChatService, Health/Check), raw bytes (server reflection too), page
tokens, and odd upstream replies from the stand-in process (each followed by Get and every
ListMessages page of its session). The cases are split evenly over the families' RPCs, and
each RPC's share is one derandomized hypothesis run, so every run sends the same cases
(`--fuzz-seed N` sends other ones, to look further).

It prints the count of each status code per family and RPC and in total, the number of
INTERNAL/UNKNOWN (the goal is 0), each such case's request (shortened; its bytes in base64
when short) with the server's tracebacks, and whether the server still served at the end
(health SERVING and a plain Complete answered). `python -m bench` exits 1 otherwise.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from standin_upstream import Behaviour
from tests.fuzz_cases import FAMILIES, Fuzzer, Outcome, Rpc, harvest, serving_problems

CASES = 10_000
QUICK_CASES = 72  # every family has at least one case per RPC (13 structured RPCs)
SHARES = {"structured": 0.4, "raw bytes": 0.25, "page tokens": 0.15, "upstream replies": 0.2}
SHOWN_CASES = 200  # distinct INTERNAL/UNKNOWN cases printed per backend
_LOG_START = re.compile(r"^\d{4}-\d\d-\d\dT")
_ADDRESS = re.compile(r"0x[0-9a-f]+")  # object addresses: one traceback, not one per call


class StandinControl:
    """The stand-in process's behaviour queue, through its HTTP control API."""

    def __init__(self, control_url: str) -> None:
        self._url = control_url

    def _post(self, route: str, payload: object = None) -> None:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self._url}/_standin/{route}", data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as reply:
            reply.read()

    def script(self, *behaviours: Behaviour) -> None:
        self._post("script", list(behaviours))

    def clear(self) -> None:
        self._post("reset")


@dataclass(frozen=True)
class Result:
    backend: str
    cases: Counter[str]  # family -> cases run
    outcomes: list[Outcome]
    problems: list[str]  # why the server was not serving at the end; empty when it was
    tracebacks: Counter[str]  # distinct tracebacks in the server log -> how often
    seconds: float

    @property
    def bad(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.bad]

    @property
    def passed(self) -> bool:
        return not self.bad and not self.problems


def plan(cases: int) -> list[tuple[str, Rpc, int]]:
    """(family, rpc, examples): each family's share split evenly over its RPCs, at least 1."""
    shares: list[tuple[str, Rpc, int]] = []
    for family, share in SHARES.items():
        rpcs = FAMILIES[family][1]
        total = max(round(cases * share), len(rpcs))
        for index, rpc in enumerate(rpcs):
            shares.append((family, rpc, total // len(rpcs) + (index < total % len(rpcs))))
    return shares


def _drive(
    fuzzer: Fuzzer, family: str, rpc: Rpc, examples: int, into: list[Outcome], chosen: int | None
) -> int:
    case = FAMILIES[family][0]
    ran = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=chosen is None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        nonlocal ran
        into.extend(case(fuzzer, data, rpc))
        ran += 1  # not counted: examples whose data ran out before any call (overruns)

    (run if chosen is None else seed(chosen)(run))()
    return ran


def _where(frame: str) -> str:
    """`File "/x/memori_server/a/b.py", line 5, in f` -> `memori_server/a/b.py:5 f`."""
    match = re.match(
        r'\s*File "(?:.*/(?=memori_server/|grpc/|site-packages/))?([^"]*)", '
        r"line (\d+), in (.*)",
        frame,
    )
    return f"{match[1]}:{match[2]} {match[3]}" if match else frame.strip()


def tracebacks(lines: Sequence[str]) -> Counter[str]:
    """The tracebacks the server logged: exception, last frame in memori_server, last frame."""
    found: Counter[str] = Counter()
    block: list[str] | None = None
    for line in [*lines, "0000-00-00T end"]:
        if _LOG_START.match(line):
            if block:
                frames = [text for text in block if text.startswith('  File "')]
                ours = [text for text in frames if "memori_server/" in text]
                where = dict.fromkeys(_where(text) for text in [*ours[-1:], *frames[-1:]])
                exception = _ADDRESS.sub("0x..", block[-1].strip())
                found[" at ".join([exception, *where])] += 1
            block = None
        elif line.startswith("Traceback (most recent call last)"):
            block = []
        elif block is not None:
            block.append(line)
    return found


def measure(
    target: str,
    control_url: str,
    backend: str,
    cases: int,
    server_lines: Sequence[str],
    chosen_seed: int | None = None,
) -> Result:
    """Run `cases` cases; the same ones every run, unless `chosen_seed` picks others."""
    started = time.perf_counter()
    upstream = StandinControl(control_url)
    log_before = len(server_lines)
    outcomes: list[Outcome] = []
    ran: Counter[str] = Counter()
    with grpc.insecure_channel(target) as channel:
        fuzzer = Fuzzer(channel, upstream, harvest(channel, upstream))
        done = 0
        for family, rpc, examples in plan(cases):
            ran[family] += _drive(fuzzer, family, rpc, examples, outcomes, chosen_seed)
            done += examples
            print(f"fuzz: {backend}: {done}/{cases} cases ({family}, {rpc.label})", flush=True)
        problems = serving_problems(channel, upstream)
    time.sleep(0.2)  # the last log lines
    return Result(
        backend,
        ran,
        outcomes,
        problems,
        tracebacks(server_lines[log_before:]),
        time.perf_counter() - started,
    )


def _counts(outcomes: Sequence[Outcome]) -> str:
    codes = Counter(outcome.code for outcome in outcomes)
    return "  ".join(f"{code.name} {count}" for code, count in sorted(codes.items(), key=str))


def format_report(results: Sequence[Result]) -> str:
    lines: list[str] = []
    for result in results:
        name = result.backend
        lines.append(
            f"{name:<12}{'total':<20}{sum(result.cases.values()):>6} cases "
            f"{len(result.outcomes):>6} calls  {result.seconds:.1f} s"
        )
        for family in FAMILIES:
            mine = [o for o in result.outcomes if o.family == family]
            lines.append(
                f"{name:<12}{family:<20}{result.cases[family]:>6} cases {len(mine):>6} calls"
                f"  {_counts(mine)}"
            )
            for label in dict.fromkeys(o.rpc for o in mine):
                calls = [o for o in mine if o.rpc == label]
                lines.append(f"{name:<12}  {label:<40}{len(calls):>6} calls  {_counts(calls)}")
        lines.append(
            f"{name:<12}{'all families':<33}{len(result.outcomes):>6} calls  "
            f"{_counts(result.outcomes)}"
        )
        bad = result.bad
        lines.append(f"{name:<12}INTERNAL/UNKNOWN: {len(bad)} (goal 0)")
        if result.problems:
            lines.append(f"{name:<12}still serving: NO: {'; '.join(result.problems)}")
        else:
            lines.append(
                f"{name:<12}still serving: yes (health SERVING, a plain Complete answered)"
            )
        distinct = Counter(outcome.report() for outcome in bad)
        for report, count in list(distinct.items())[:SHOWN_CASES]:
            lines.append(f"{name:<12}case x{count}: {report}")
        if len(distinct) > SHOWN_CASES:
            lines.append(f"{name:<12}... and {len(distinct) - SHOWN_CASES} more distinct cases")
        for trace, count in result.tracebacks.most_common():
            lines.append(f"{name:<12}server traceback x{count}: {trace}")
        lines.append("")
    return "\n".join(lines).rstrip()
