"""Per-tenant fairness: how many completions a tenant runs at once, and how fast it starts them.

One tenant's burst must not take the upstream pool, the database or the event loop from the
others. Limits are kept per server process (each process of a scale-out deployment enforces
its own share); a refusal is RESOURCE_EXHAUSTED with a RetryInfo saying when to come back,
which the clients turn into the openai SDK's RateLimitError and retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from memori_server.around import Around
from memori_server.config import Settings
from memori_server.errors import Code, ServiceError

# A refused caller retries after at least this long, so a crowd of retries spreads out.
MIN_RETRY_SECONDS = 0.05
CONCURRENCY_RETRY_SECONDS = 0.5


class TenantLimited(ServiceError):
    code = Code.RESOURCE_EXHAUSTED

    def __init__(self, reason: str, message: str, retry_after: float, quota: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        self.quota = quota

    def details(self) -> list[Message]:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(int(self.retry_after * 1000), 1))
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(subject="tenant", description=self.quota)
            ]
        )
        return [*super().details(), failure, error_details_pb2.RetryInfo(retry_delay=delay)]


@dataclass
class _TenantState:
    running: int = 0
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    slot: Around = field(init=False, repr=False, compare=False)
    """Counts a call as running inside it: made once, entered by each of the tenant's calls."""

    def __post_init__(self) -> None:
        self.slot = Around(self._start, self._end)

    def _start(self) -> None:
        self.running += 1

    def _end(self) -> None:
        self.running -= 1


class TenantLimits:
    """Concurrency and token-bucket rate limits per tenant; 0 turns a limit off."""

    def __init__(
        self,
        max_concurrent: int,
        per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        what: str = "completions",
    ) -> None:
        """`what` the limits count, as refusals name it (AppendMessages has limits of its
        own, by the same settings: "appends")."""
        self._max_concurrent = max_concurrent
        self._per_second = per_second
        self._burst = float(burst)
        self._clock = clock
        self._what = what
        self._tenants: dict[str, _TenantState] = {}

    @classmethod
    def configured(cls, settings: Settings, *, what: str = "completions") -> TenantLimits:
        """The limits the --tenant-* settings set (completions and appends each get theirs)."""
        return cls(
            settings.tenant_max_concurrent_completions,
            settings.tenant_completions_per_second,
            settings.tenant_completions_burst,
            what=what,
        )

    def _state(self, tenant_id: str) -> _TenantState:
        state = self._tenants.get(tenant_id)
        if state is None:
            state = self._tenants[tenant_id] = _TenantState(
                tokens=self._burst, refilled=self._clock()
            )
        return state

    def _take_token(self, tenant_id: str, state: _TenantState) -> None:
        if self._per_second <= 0:
            return
        now = self._clock()
        state.tokens = min(self._burst, state.tokens + (now - state.refilled) * self._per_second)
        state.refilled = now
        if state.tokens < 1.0:
            wait = max((1.0 - state.tokens) / self._per_second, MIN_RETRY_SECONDS)
            raise TenantLimited(
                "TENANT_RATE_LIMITED",
                f"tenant {tenant_id!r} starts more than {self._per_second:g} {self._what} per "
                f"second (burst {self._burst:g}, --tenant-completions-per-second); "
                f"retry in {wait:.2f} s",
                wait,
                f"{self._per_second:g} {self._what} per second",
            )
        state.tokens -= 1.0

    def completion(self, tenant_id: str) -> AbstractContextManager[None]:
        """Hold one of the tenant's slots (a completion's, or an append's) for the block;
        TenantLimited if none (raised here, before the block)."""
        state = self._state(tenant_id)
        if self._max_concurrent and state.running >= self._max_concurrent:
            raise TenantLimited(
                "TENANT_CONCURRENCY_LIMITED",
                f"tenant {tenant_id!r} already runs {state.running} {self._what}, the most "
                "this server allows at once (--tenant-max-concurrent-completions); retry when "
                "one has finished",
                CONCURRENCY_RETRY_SECONDS,
                f"{self._max_concurrent} concurrent {self._what}",
            )
        self._take_token(tenant_id, state)
        return state.slot


__all__ = ["TenantLimited", "TenantLimits"]
