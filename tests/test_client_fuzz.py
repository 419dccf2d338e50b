"""Whatever an app passes to `create(...)`, the client raises what an app can handle (an
openai exception, or TypeError/ValueError before any call), never a gRPC or protobuf error,
and the service keeps answering."""

from __future__ import annotations

import random
from typing import Any

import openai
from memori_client import Memori

from standin_upstream import StandinThread
from tests.chat_calls import MODEL
from tests.client_support import ask, user

ODD_VALUES: list[Any] = [
    None,
    "",
    "x" * 300,
    -1,
    0,
    2**70,
    1.5,
    float("inf"),
    True,
    [],
    {},
    {"type": "text"},
    [{"type": "text", "text": "hi"}],
    ["a", 1],
    {"nested": {"deeper": [1, 2.5, None]}},
    b"bytes",
    object(),
    "\udcff",
]
ROLES = ["user", "assistant", "system", "developer", "tool", "function", "", None, 3]
PARAMETERS = [
    "temperature",
    "top_p",
    "max_tokens",
    "n",
    "seed",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "user",
    "logit_bias",
    "metadata",
    "frequency_penalty",
    "stream_options",
    "extra_body",
]
ALLOWED = (openai.APIError, TypeError, ValueError)


def _message(rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return rng.choice(ODD_VALUES)
    message: dict[str, Any] = {"role": rng.choice(ROLES)}
    if rng.random() < 0.8:
        message["content"] = rng.choice([*ODD_VALUES, "hello", "hello"])
    if rng.random() < 0.15:
        message["tool_calls"] = rng.choice(
            [[{"id": "c", "function": {"name": "f", "arguments": "{}"}}], [{}], ODD_VALUES[3]]
        )
    if rng.random() < 0.15:
        message["tool_call_id"] = rng.choice(ODD_VALUES)
    if rng.random() < 0.1:
        message["name"] = rng.choice(ODD_VALUES)
    return message


def test_random_create_arguments_fail_cleanly(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    rng = random.Random(5)
    outcomes: dict[str, int] = {}
    silent: list[str] = []  # exceptions without a message a person could act on
    for _ in range(250):
        # A valid request with up to two things made odd.
        arguments: dict[str, Any] = {"model": MODEL, "messages": [user("hello")]}
        for _ in range(rng.randint(0, 2)):
            change = rng.random()
            if change < 0.15:
                arguments["model"] = rng.choice(["", None, 7, "m" * 300])
            elif change < 0.5:
                arguments["messages"] = [_message(rng) for _ in range(rng.randint(0, 3))]
            else:
                arguments[rng.choice(PARAMETERS)] = rng.choice(ODD_VALUES)
        arguments["stream"] = rng.random() < 0.3
        try:
            reply = client.chat.completions.create(**arguments)
            if arguments["stream"]:
                with reply:
                    list(reply)
            outcome = "ok"
        except ALLOWED as error:
            outcome = type(error).__name__
            if not str(error):
                silent.append(outcome)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert set(outcomes) <= {
        "ok",
        "TypeError",
        "ValueError",
        "BadRequestError",
        "UnprocessableEntityError",
    }, outcomes
    assert not silent, silent
    assert outcomes.get("ok", 0) > 0
    assert outcomes.get("BadRequestError", 0) > 0
    assert ask(client, "still there?") == "echo: still there?"
