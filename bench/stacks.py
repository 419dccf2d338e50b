"""Where a server's event loop spends its time, from py-spy's collapsed stacks.

    python -m bench.stacks profile.txt [--top 25] [--all-threads]

Three views of the samples taken on the event loop's thread (the one serving every call):
by package, by the innermost memori_server function (what our code was doing, including
the libraries it called), and by the innermost frame (where the time itself went).
"""

from __future__ import annotations

import argparse
import collections
import re
from collections.abc import Iterator
from pathlib import Path

_FILE = re.compile(r"\(([^:)]+)")


def _samples(path: Path, all_threads: bool) -> Iterator[tuple[list[str], int]]:
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        if not all_threads and "run_forever" not in stack:
            continue  # the event loop's thread runs under run_forever
        yield stack.split(";"), int(count)


def _package(frame: str) -> str:
    match = _FILE.search(frame)
    return match.group(1).split("/")[0] if match else frame


def summarize(path: Path, top: int, all_threads: bool) -> str:
    packages: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in _samples(path, all_threads):
        total += count
        packages[_package(frames[-1])] += count
        own = [frame for frame in frames if "memori_server/" in frame]
        ours[own[-1] if own else "(outside memori_server)"] += count
        leaves[frames[-1]] += count
    if not total:
        return f"{path}: no samples" + ("" if all_threads else " on the event loop's thread")
    lines = [f"{path}: {total} samples" + ("" if all_threads else " on the event loop")]
    for title, counter in (
        ("by package (innermost frame)", packages),
        ("by innermost memori_server function", ours),
        ("by innermost frame", leaves),
    ):
        lines.append(f"\n{title}")
        lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stacks", description=__doc__)
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--all-threads", action="store_true")
    args = parser.parse_args()
    print(summarize(args.profile, args.top, args.all_threads))


if __name__ == "__main__":
    main()
