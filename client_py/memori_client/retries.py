"""When and how long to wait before retrying a chat call, as the openai SDK does over HTTP.

Retries are safe here: every attempt of one `create(...)` carries the same request_id, so
the service never stores a turn twice and never calls the upstream again for a call that
already succeeded.
"""

from __future__ import annotations

import random

import openai

_INITIAL_DELAY = 0.5
_MAX_DELAY = 8.0
_MAX_RETRY_AFTER = 60.0
_RETRIED_STATUSES = frozenset({408, 409, 429})


def worth_retrying(error: Exception) -> bool:
    if isinstance(error, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in _RETRIED_STATUSES or error.status_code >= 500
    return False


def delay(retries_done: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: the service's RetryInfo, else jittered backoff."""
    if retry_after is not None and 0 < retry_after <= _MAX_RETRY_AFTER:
        return retry_after
    backoff = min(_INITIAL_DELAY * 2.0**retries_done, _MAX_DELAY)
    return backoff * (1 - 0.25 * random.random())
