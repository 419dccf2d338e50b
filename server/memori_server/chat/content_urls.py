"""URLs in content parts that the upstream would fetch: only public ones, by policy.

Upstreams such as vLLM download `image_url` (and similar) parts themselves, and a stored
part is sent again on every later turn of the session. A URL pointing at the cloud metadata
service (169.254.169.254), localhost or a private network would make the upstream fetch it
for the caller (SSRF). So by default a part's URL must be `https:` (or inline `data:`), name
a host rather than a literal address, and that host must resolve to public addresses only.
The operator can widen the schemes or allow private addresses.

What this cannot stop: an upstream that resolves the name differently (split-horizon DNS)
or a name whose DNS answer changes after the check (rebinding); the docs say so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from memori_server.config import Settings
from memori_server.errors import InvalidArgument

RESOLVE_TIMEOUT_SECONDS = 2.0
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 1024
MAX_URL_CHARS = 8192
_SHOWN_CHARS = 80


def urls_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, URL) of every string under a key named `url` or `*_url`, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if isinstance(item, str) and (key == "url" or key.endswith("_url")):
                yield where, item
            else:
                yield from urls_in(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from urls_in(item, f"{path}[{index}]")


def _shown(url: str) -> str:
    return url if len(url) <= _SHOWN_CHARS else f"{url[:_SHOWN_CHARS]}..."


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True)
class _Verdict:
    problem: str | None
    expires: float


class ContentUrlPolicy:
    """Checks content-part URLs; DNS answers are cached briefly so repeats cost nothing."""

    def __init__(self, schemes: Iterable[str], allow_private: bool) -> None:
        self._schemes = frozenset(scheme.strip().lower() for scheme in schemes if scheme.strip())
        self._allow_private = allow_private
        self._hosts: OrderedDict[str, _Verdict] = OrderedDict()

    @classmethod
    def configured(cls, settings: Settings) -> ContentUrlPolicy:
        """The policy of --content-url-schemes and --allow-private-content-urls."""
        return cls(settings.content_url_schemes.split(","), settings.allow_private_content_urls)

    async def check(self, urls: Iterable[tuple[str, str]]) -> None:
        """INVALID_ARGUMENT naming each URL the policy refuses."""
        violations: list[tuple[str, str]] = []
        for field, url in urls:
            problem = await self._problem(url)
            if problem is not None:
                violations.append((field, f"{_shown(url)!r}: {problem}"))
        if violations:
            raise InvalidArgument(violations)

    async def _problem(self, url: str) -> str | None:
        if len(url) > MAX_URL_CHARS:
            return f"longer than {MAX_URL_CHARS} characters"
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
            parts.port  # noqa: B018 (raises ValueError for a port out of range)
        except ValueError as error:
            return f"not a valid URL ({error})"
        scheme = parts.scheme.lower()
        allowed = ", ".join(sorted(self._schemes))
        if scheme not in self._schemes:
            return f"scheme {scheme or '(none)'!r} is not allowed here (allowed: {allowed})"
        if scheme == "data":
            return None
        if not host:
            return "has no host"
        if self._allow_private:
            return None
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return await self._host_problem(host)
        return "names a literal IP address; use a host name that resolves to public addresses"

    async def _host_problem(self, host: str) -> str | None:
        now = time.monotonic()
        cached = self._hosts.get(host)
        if cached is not None and cached.expires > now:
            self._hosts.move_to_end(host)
            return cached.problem
        problem = await self._resolve(host)
        self._hosts[host] = _Verdict(problem, now + CACHE_SECONDS)
        self._hosts.move_to_end(host)
        while len(self._hosts) > CACHE_ENTRIES:
            self._hosts.popitem(last=False)
        return problem

    @staticmethod
    async def _resolve(host: str) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                answers = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError):
            return "its host does not resolve from this server, so it cannot be checked"
        addresses = {str(answer[4][0]) for answer in answers}
        if not addresses:
            return "its host does not resolve from this server, so it cannot be checked"
        if not all(_public(address) for address in addresses):
            return "its host resolves to a private, loopback or link-local address"
        return None


__all__ = ["ContentUrlPolicy", "urls_in"]
