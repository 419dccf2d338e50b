"""openai clients for client tests: their own base URL is a dead port, so any call that
bypassed the service would fail with a connection error instead of passing unnoticed."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionUserMessageParam

from standin_upstream import StandinThread
from tests.chat_calls import MODEL, sent_messages

DEAD_BASE_URL = "http://127.0.0.1:9/v1"
APP_KEY = "the-app-key-is-not-sent-anywhere"


def sync_client(max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(api_key=APP_KEY, base_url=DEAD_BASE_URL, max_retries=max_retries)


def async_client(max_retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=APP_KEY, base_url=DEAD_BASE_URL, max_retries=max_retries)


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}


def ask(client: openai.OpenAI, text: str, **options: Any) -> str:
    """One turn through a registered sync client; the reply text."""
    reply = client.chat.completions.create(model=MODEL, messages=[user(text)], **options)
    assert isinstance(reply, openai.types.chat.ChatCompletion)
    return reply.choices[0].message.content or ""


def contents(upstream: StandinThread, index: int = -1) -> list[str]:
    """The text of every message the upstream received in one request."""
    return [str(item.get("content")) for item in sent_messages(upstream, index)]
