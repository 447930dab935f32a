"""API keys → tenants.

Keys come from ``DOCLAKE_API_KEYS`` (``key:tenant`` pairs, comma-separated) or a file named by
``DOCLAKE_API_KEYS_FILE`` (one pair per line, ``#`` comments). Only their sha256 digests are kept in
memory, and a presented key is compared against every digest in constant time, so neither the keys
nor their position leak. With no keys the service is single-tenant and refuses to bind anything but
loopback (see ``ensure_safe_bind``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pipelines.contracts.validate import validate_doc_id
from pipelines.errors import ConfigError, InvalidInput
from pipelines.settings import Settings

__all__ = ["ADMIN", "KeyRing", "ensure_safe_bind"]

ADMIN = "__admin__"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class KeyRing:
    entries: tuple[tuple[bytes, str], ...]  # (sha256 of key, tenant or ADMIN)

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        pairs: list[str] = []
        if settings.api_keys is not None:
            pairs += settings.api_keys.get_secret_value().split(",")
        if settings.api_keys_file is not None:
            try:
                lines = settings.api_keys_file.read_text().splitlines()
            except OSError as e:
                raise ConfigError(f"cannot read DOCLAKE_API_KEYS_FILE: {e}") from e
            pairs += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        entries: list[tuple[bytes, str]] = []
        for pair in filter(str.strip, pairs):  # an empty DOCLAKE_API_KEYS means no keys
            key, sep, tenant = pair.strip().rpartition(":")
            if not sep or len(key) < 16:
                raise ConfigError("each API key entry must be 'key:tenant' with a key of at least 16 characters")
            try:
                entries.append((_digest(key), validate_doc_id(tenant.strip(), what="tenant")))
            except InvalidInput as e:
                raise ConfigError(f"API key entry for tenant {tenant.strip()!r}: {e}") from e
        if settings.admin_key is not None:
            admin = settings.admin_key.get_secret_value()
            if len(admin) < 16:
                raise ConfigError("DOCLAKE_ADMIN_KEY must be at least 16 characters")
            entries.append((_digest(admin), ADMIN))
        return cls(tuple(entries))

    def principal(self, presented: str) -> str | None:
        """The tenant (or ADMIN) a key belongs to, or None."""
        digest = _digest(presented)
        found: str | None = None
        for stored, who in self.entries:  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(stored, digest):
                found = who
        return found


def ensure_safe_bind(settings: Settings, host: str) -> str:
    """Refuse a non-loopback bind without keys; returns the start-up notice to print."""
    ring = KeyRing.from_settings(settings)
    if ring.enabled:
        return f"auth on: {len(ring.entries)} API key(s)"
    if host not in _LOOPBACK:
        raise ConfigError(
            f"refusing to bind {host}: no API keys are configured (set DOCLAKE_API_KEYS), "
            "so the service would be open to anyone; bind 127.0.0.1 or configure keys"
        )
    return "auth off: no API keys configured; single tenant 'default', bound to loopback only"
