"""Token counts for history budgeting, with tiktoken and without network access.

tiktoken downloads its encoding files on first use, which hangs or fails on an offline or
air-gapped host and must never happen on a request path. So the server uses a model's exact
encoding only when tiktoken's cache (TIKTOKEN_CACHE_DIR) already holds it, and otherwise the
cl100k_base file bundled with the server (OpenAI's published file, checked by its SHA-256).
Counts are then estimates within a few percent, which a token budget tolerates.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import tiktoken
from tiktoken.load import load_tiktoken_bpe

log = logging.getLogger(__name__)

BUNDLED_ENCODING = "cl100k_base"
_BUNDLED_FILE = Path(__file__).parent / "encodings" / "cl100k_base.tiktoken"
_BUNDLED_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# From tiktoken_ext.openai_public.cl100k_base, which would download the same file.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
    r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
_PUBLIC_FILES = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# OpenAI's cookbook: each message costs about 3 tokens of framing, a name one more.
MESSAGE_OVERHEAD = 3
# A rough, fixed price for non-text content parts (images, audio, files).
NON_TEXT_PART_TOKENS = 85


@lru_cache(maxsize=1)
def bundled_encoding() -> tiktoken.Encoding:
    return tiktoken.Encoding(
        name=BUNDLED_ENCODING,
        pat_str=_CL100K_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(_BUNDLED_FILE), expected_hash=_BUNDLED_SHA256),
        special_tokens=_CL100K_SPECIAL,
    )


def _cached_locally(encoding_name: str) -> bool:
    """Whether tiktoken would load `encoding_name` from its cache instead of downloading it."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    url = _PUBLIC_FILES.format(encoding_name.removesuffix("_harmony"))
    return bool(cache_dir) and os.path.exists(
        os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    )


@lru_cache(maxsize=256)
def encoding_for(model: str) -> tiktoken.Encoding:
    """The model's own encoding when available offline, else the bundled cl100k_base."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return bundled_encoding()  # not an OpenAI model (llama, qwen, ...): an estimate
    if name == BUNDLED_ENCODING or not _cached_locally(name):
        return bundled_encoding()
    try:
        return tiktoken.get_encoding(name)
    except Exception as error:  # a damaged cache file: fall back rather than fail calls
        log.warning("cannot load tiktoken encoding", extra={"encoding": name, "error": error})
        return bundled_encoding()


def _text_of(parts: Iterable[dict[str, Any]]) -> tuple[str, int]:
    texts: list[str] = []
    others = 0
    for part in parts:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str):
            texts.append(text)
        else:
            others += 1
    return "\n".join(texts), others


def count_message(encoding: tiktoken.Encoding, message: dict[str, Any]) -> int:
    """Tokens a chat message (OpenAI shape) takes in a prompt, framing included."""
    total = MESSAGE_OVERHEAD
    pieces: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        pieces.append(content)
    elif isinstance(content, list):
        text, others = _text_of(content)
        pieces.append(text)
        total += others * NON_TEXT_PART_TOKENS
    if message.get("name"):
        pieces.append(str(message["name"]))
        total += 1
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        pieces.append(str(function.get("name", "")))
        pieces.append(str(function.get("arguments", "")))
    text = "\n".join(piece for piece in pieces if piece)
    # encode_ordinary: text like "<|endoftext|>" in a message is text, not a special token.
    return total + (len(encoding.encode_ordinary(text)) if text else 0)
