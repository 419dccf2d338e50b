"""A context manager made once and entered by every call: cheaper than a `contextmanager`
generator per call, for the blocks each completion passes through."""

from __future__ import annotations

import contextlib
from collections.abc import Callable


class Around(contextlib.AbstractContextManager[None]):
    """Call `before` on entering and `after` on leaving, however the block ends."""

    __slots__ = ("_after", "_before")

    def __init__(self, before: Callable[[], None], after: Callable[[], None]) -> None:
        self._before, self._after = before, after

    def __enter__(self) -> None:
        self._before()

    def __exit__(self, *_exc: object) -> None:
        self._after()


__all__ = ["Around"]
