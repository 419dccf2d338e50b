"""`python -m standin_upstream`: run the test double as its own process until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from standin_upstream.server import StandinUpstream

DESCRIPTION = (
    "Stand-in OpenAI-compatible upstream. This is a TEST DOUBLE for tests, benchmarks and "
    "offline demos, not a model: it echoes the last user message and plays behaviours "
    "scripted through POST /_standin/script. Once listening it prints one line, "
    "'standin-upstream listening base_url=...', and serves until SIGTERM or SIGINT."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standin_upstream", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="delay before every chat reply (default 0)"
    )
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        parser.error("--delay-ms must not be negative")
    return args


async def serve(host: str, port: int, delay: float) -> None:
    upstream = StandinUpstream(delay=delay)
    await upstream.start(host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    print(f"standin-upstream listening base_url={upstream.base_url}", flush=True)
    try:
        await stopping.wait()
    finally:
        await upstream.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
