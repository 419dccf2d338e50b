"""Which tenant a call acts for: set per call by the API-key interceptor, else the default."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

DEFAULT_TENANT = "default"
current_tenant: ContextVar[str] = ContextVar("memori_tenant", default=DEFAULT_TENANT)


def tenant_of(context: Any) -> str:
    del context  # the interceptor resolved the caller's tenant before the handler ran
    return current_tenant.get()
