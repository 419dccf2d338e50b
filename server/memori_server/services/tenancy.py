"""Which tenant a call acts for: set per call by the API-key interceptor, else the default.

A context variable, so each call's task sees its own tenant; the handler reads it with
`calling_tenant()` and never trusts anything in the request for it.
"""

from __future__ import annotations

from contextvars import ContextVar

DEFAULT_TENANT = "default"
_calling_tenant: ContextVar[str] = ContextVar("memori_tenant", default=DEFAULT_TENANT)


def calling_tenant() -> str:
    """The tenant of the call being handled (its API key's, or the default one)."""
    return _calling_tenant.get()


def act_for(tenant_id: str) -> None:
    """Make the current call act for `tenant_id` (the API-key interceptor's job)."""
    _calling_tenant.set(tenant_id)
