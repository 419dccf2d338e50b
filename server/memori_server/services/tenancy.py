"""Which tenant a call acts for. One default tenant until API keys map callers to tenants."""

from __future__ import annotations

import grpc

DEFAULT_TENANT = "default"


def tenant_of(context: grpc.aio.ServicerContext[object, object]) -> str:
    del context  # API-key authentication will derive the tenant from call metadata
    return DEFAULT_TENANT
