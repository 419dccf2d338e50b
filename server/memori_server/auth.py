"""API keys: who may call, and which tenant each key acts for.

Keys are configured as `tenant=key` pairs (or `tenant=sha256:<hex digest of the key>`, so
config files need not hold the secret itself). Clients send `authorization: Bearer <key>`
or `x-api-key: <key>` metadata. Without configured keys every caller is the default tenant,
which the server allows on loopback only unless the operator says otherwise: it fails closed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from memori_server.config import Settings, parse_listen
from memori_server.errors import Code, ServiceError
from memori_server.interception import Behavior, CallInterceptor, StreamBehavior
from memori_server.rpc_errors import abort_with
from memori_server.services.tenancy import act_for

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIGEST = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
MIN_KEY_CHARS = 32  # a guessable key is no protection: `openssl rand -hex 32` makes 64
PROTECTED_PREFIX = "/memori.v1."  # health and reflection stay open for probes and tools


class Unauthenticated(ServiceError):
    code = Code.UNAUTHENTICATED

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class ApiKeys:
    """sha256(key) → tenant; the plain keys are not kept."""

    tenants_by_digest: dict[bytes, str]

    @classmethod
    def parse(cls, entries: Iterable[str], source: str) -> ApiKeys:
        """`tenant=key` / `tenant=sha256:<hex>` entries; blank entries and `#` comments skip."""
        table: dict[bytes, str] = {}
        for number, raw in enumerate(entries, start=1):
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            tenant, sep, key = (part.strip() for part in entry.partition("="))
            if not sep or not key:
                raise ValueError(f"{source} entry {number}: expected tenant=key")
            if not _TENANT.match(tenant):
                raise ValueError(
                    f"{source} entry {number}: tenant {tenant!r} must be 1-64 letters, digits, "
                    "'.', '_' or '-'"
                )
            digest_match = _DIGEST.match(key)
            if digest_match is None and len(key) < MIN_KEY_CHARS:
                raise ValueError(
                    f"{source} entry {number}: the key of tenant {tenant!r} has {len(key)} "
                    f"characters; use at least {MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)"
                )
            digest = bytes.fromhex(digest_match.group(1)) if digest_match else _digest(key)
            if digest in table:
                raise ValueError(f"{source} entry {number}: the same key is listed twice")
            table[digest] = tenant
        return cls(table)

    def __bool__(self) -> bool:
        return bool(self.tenants_by_digest)

    def tenant_for(self, metadata: Iterable[tuple[str, str | bytes]]) -> str:
        """The tenant of the call's key; Unauthenticated when it is missing or unknown."""
        presented = None
        for name, value in metadata:
            if isinstance(value, bytes):
                continue
            if name == "x-api-key":
                presented = value.strip()
            elif name == "authorization" and value[:7].lower() == "bearer ":
                presented = value[7:].strip()
        if not presented:
            raise Unauthenticated(
                "API_KEY_MISSING",
                "this server needs an API key: send metadata 'authorization: Bearer <key>'",
            )
        tenant = self.tenants_by_digest.get(_digest(presented))
        if tenant is None:
            raise Unauthenticated("API_KEY_INVALID", "the API key is not valid")
        return tenant


def keys_configured(settings: Settings) -> bool:
    """Whether the operator asked for API keys (a keys file may still turn out empty)."""
    return bool(settings.api_keys.get_secret_value().strip()) or settings.api_keys_file is not None


def unauthenticated_exposure(settings: Settings, keys: ApiKeys) -> str | None:
    """Why serving would expose every conversation to anyone on the network, or None.

    Without keys, anyone who reaches the port reads every session and spends the operator's
    upstream key, so beyond loopback that needs an explicit --allow-unauthenticated.
    """
    host, _ = parse_listen(settings.listen)
    if keys or settings.allow_unauthenticated or is_loopback(host):
        return None
    return (
        f"refusing to listen on {settings.listen} without API keys: set MEMORI_API_KEYS or "
        "MEMORI_API_KEYS_FILE (tenant=key, keys of 32+ characters), listen on 127.0.0.1, "
        "or pass --allow-unauthenticated (MEMORI_ALLOW_UNAUTHENTICATED=true) if a trusted "
        "network guards the port"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_api_keys(settings: Settings) -> ApiKeys:
    """Keys from --api-keys and --api-keys-file; ValueError names a malformed entry."""
    inline = ApiKeys.parse(settings.api_keys.get_secret_value().split(","), "api_keys")
    from_file = ApiKeys({})
    if settings.api_keys_file is not None:
        try:
            lines = settings.api_keys_file.read_text().splitlines()
        except OSError as error:
            raise ValueError(f"{settings.api_keys_file}: {error.strerror}") from error
        from_file = ApiKeys.parse(lines, str(settings.api_keys_file))
    if set(inline.tenants_by_digest) & set(from_file.tenants_by_digest):
        raise ValueError("a key is in both api_keys and api_keys_file")
    return ApiKeys({**inline.tenants_by_digest, **from_file.tenants_by_digest})


class ApiKeyInterceptor(CallInterceptor):
    """Rejects memori.v1 calls without a valid key; the handler then runs as its tenant."""

    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    def replace_keys(self, keys: ApiKeys) -> None:
        """Take new keys for the calls that start from now on (a SIGHUP reload)."""
        self._keys = keys

    def applies_to(self, method: str) -> bool:
        return method.startswith(PROTECTED_PREFIX)

    async def _authenticate(self, context: Any) -> None:
        """Set the call's tenant (in this call's task only), or abort UNAUTHENTICATED."""
        try:
            tenant = self._keys.tenant_for(context.invocation_metadata() or ())
        except Unauthenticated as error:
            await abort_with(context, error)
        act_for(tenant)

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def authenticated(request: Any, context: Any) -> Any:
            await self._authenticate(context)
            return await behavior(request, context)

        return authenticated

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def authenticated(request: Any, context: Any) -> AsyncIterator[Any]:
            await self._authenticate(context)
            async for response in behavior(request, context):
                yield response

        return authenticated
