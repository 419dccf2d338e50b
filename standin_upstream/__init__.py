"""A stand-in for the upstream LLM: a local OpenAI-compatible HTTP server that is a TEST DOUBLE.

It exists for tests, benchmarks and offline demos only. It echoes the last user message,
records every chat request, and plays scripted behaviours (custom replies, tool calls, HTTP
errors, delays, stalls, broken streams). It is not a model, and the product never depends on
it: memori-grpc always talks to a real OpenAI-compatible URL, which may be pointed here.

    with StandinThread() as upstream:                      # synchronous tests
        upstream.script({"fail": {"status": 429, "retry_after": 1}})
        client = openai.OpenAI(base_url=upstream.base_url, api_key="test")

    python -m standin_upstream --port 8099 --delay-ms 50   # a separate process, controlled
                                                           # over HTTP under /_standin/
"""

from standin_upstream.behaviours import Behaviour, FailSpec, RawSpec, ReplySpec, ToolCallSpec
from standin_upstream.server import StandinUpstream
from standin_upstream.state import RecordedRequest
from standin_upstream.thread import StandinThread

__all__ = [
    "Behaviour",
    "FailSpec",
    "RawSpec",
    "RecordedRequest",
    "ReplySpec",
    "StandinThread",
    "StandinUpstream",
    "ToolCallSpec",
]
