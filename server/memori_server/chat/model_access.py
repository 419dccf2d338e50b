"""Which models each tenant may use (--allowed-models); every model when nothing is set."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from memori_server.errors import Code, ServiceError

ANY_TENANT = "*"


class ModelNotAllowed(ServiceError):
    code = Code.PERMISSION_DENIED
    reason = "MODEL_NOT_ALLOWED"


class ModelAccess:
    """tenant → fnmatch patterns; tenants without entries of their own take `*`'s."""

    def __init__(self, patterns: dict[str, tuple[str, ...]]) -> None:
        self._patterns = patterns

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ModelAccess:
        """`tenant=pattern` entries; ValueError names a malformed one."""
        patterns: dict[str, list[str]] = {}
        for number, raw in enumerate(entries, start=1):
            entry = raw.strip()
            if not entry:
                continue
            tenant, sep, pattern = (part.strip() for part in entry.partition("="))
            if not sep or not tenant or not pattern:
                raise ValueError(
                    f"allowed_models entry {number} ({entry!r}): expected tenant=model-pattern, "
                    "e.g. acme=gpt-4o* or *=gpt-4o-mini"
                )
            patterns.setdefault(tenant, []).append(pattern)
        return cls({tenant: tuple(items) for tenant, items in patterns.items()})

    def check(self, tenant_id: str, model: str) -> None:
        """ModelNotAllowed unless the tenant may use `model`."""
        if not self._patterns:
            return
        patterns = self._patterns.get(tenant_id, self._patterns.get(ANY_TENANT, ()))
        if not any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns):
            raise ModelNotAllowed(
                f"model {model!r} is not enabled for this tenant; ask the operator to add it "
                "to --allowed-models"
            )


__all__ = ["ModelAccess", "ModelNotAllowed"]
