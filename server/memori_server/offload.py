"""CPU-heavy work of large calls, off the event loop but not fighting it.

The event loop serves every call and the health checks; a large request (thousands of
messages to validate, compare, count and encode) must not hold it. Threads share one GIL,
so several heavy threads would starve the loop of it; one worker thread queues large calls
instead, and the loop always has a single competitor at most.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_HEAVY = ThreadPoolExecutor(1, thread_name_prefix="memori-heavy")


async def offload(heavy: bool, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on the heavy-work thread when `heavy`, else right here."""
    if not heavy:
        return function(*args)
    call = functools.partial(contextvars.copy_context().run, function, *args)
    return await asyncio.get_running_loop().run_in_executor(_HEAVY, call)
