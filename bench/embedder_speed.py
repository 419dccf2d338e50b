"""What local embeddings cost: load time, resident memory, throughput and query latency.

    python -m bench.embedder_speed [--sentences 1000] [--queries 200]

The memory index embeds passages in the background (throughput matters) and each recalled
completion embeds one query in line (latency matters). Memory is VmRSS from
/proc/self/status: after importing onnxruntime and tokenizers, after building the Embedder,
and after the throughput runs (onnxruntime's arena keeps what the largest batch needed).
The sentences are chat-like, about 20 words each, generated from a fixed seed. On a shared
machine, sentences per CPU second is the steadier figure.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

from memori_server.memory.embedder import Embedder

_SUBJECTS = ("I", "My sister", "We", "Our team", "The doctor", "My landlord", "You", "Dad")
_VERBS = ("moved", "booked", "forgot", "mentioned", "finished", "cancelled", "started", "asked")
_OBJECTS = (
    "the flight to Lisbon",
    "a dentist appointment",
    "the quarterly report",
    "my daughter's birthday party",
    "the new apartment lease",
    "a vegetarian lasagna recipe",
    "the marathon training plan",
    "our wedding anniversary dinner",
)
_TAILS = (
    "because the weather looked terrible all week",
    "so could you remind me about it on Friday morning",
    "and I still need to call them back before noon",
    "but honestly I am not sure it was a good idea",
    "after we talked about it with the whole family last night",
    "which means the budget for next month is really tight",
)
_WHEN = ("yesterday", "last Tuesday", "this morning", "two weeks ago", "in March", "tonight")


def chat_sentences(count: int, seed: int = 7) -> list[str]:
    """`count` chat-like sentences of roughly 20 words, the same for every run."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"{rng.choice(_WHEN)}, {rng.choice(_TAILS)}."
        for _ in range(count)
    ]


def rss_mib() -> float:
    """This process's resident set size, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedder_speed", description=__doc__)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)

    before = rss_mib()
    started = time.perf_counter()
    import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
    import tokenizers  # noqa: F401

    imported = time.perf_counter()
    after_import = rss_mib()
    embedder = Embedder(threads=1)
    loaded = time.perf_counter()
    after_load = rss_mib()
    import_mib = after_import - before
    print(f"import onnxruntime, tokenizers: {imported - started:.2f} s, +{import_mib:.0f} MiB")
    print(
        f"Embedder() load: {loaded - imported:.2f} s, +{after_load - after_import:.0f} MiB RSS "
        f"(memory_bytes {embedder.memory_bytes / 2**20:.1f} MiB)"
    )

    sentences = chat_sentences(args.sentences)
    embedder.embed(sentences[:64])  # warm-up
    for threads in (1, 2):
        run = embedder if threads == 1 else Embedder(threads=threads)
        started, cpu_started = time.perf_counter(), time.process_time()
        run.embed(sentences)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        print(
            f"threads={threads}: {len(sentences) / elapsed:.0f} sentences/s ({elapsed:.2f} s, "
            f"{cpu:.2f} CPU s: {len(sentences) / cpu:.0f} sentences per CPU second)"
        )
        query = "What did I tell you about my sister's wedding plans?"
        run.embed_one(query)
        latencies = []
        for _ in range(args.queries):
            started = time.perf_counter()
            run.embed_one(query)
            latencies.append(time.perf_counter() - started)
        print(
            f"threads={threads}: one short query p50 {percentile(latencies, 50) * 1000:.2f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.2f} ms"
        )
        if threads == 1:
            print(f"RSS after the threads=1 runs: +{rss_mib() - after_import:.0f} MiB since import")


if __name__ == "__main__":
    main()
