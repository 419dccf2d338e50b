"""Genuine openai response objects from the upstream JSON the service relays byte for byte."""

from __future__ import annotations

import json
from typing import TypeVar

import pydantic
from openai.types.chat import ChatCompletion, ChatCompletionChunk

_Model = TypeVar("_Model", ChatCompletion, ChatCompletionChunk)


def _rebuild(kind: type[_Model], text: str) -> _Model:
    try:
        return kind.model_validate_json(text)  # fast, and right for every conforming upstream
    except pydantic.ValidationError:
        # Lenient like the openai SDK itself: an upstream's odd field does not fail the call.
        return kind.construct(**json.loads(text))


def completion(text: str) -> ChatCompletion:
    return _rebuild(ChatCompletion, text)


def chunk(text: str) -> ChatCompletionChunk:
    return _rebuild(ChatCompletionChunk, text)
