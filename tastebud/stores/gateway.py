"""The gateway's metadata stores: API keys and the dead-letter queue.

They live in the configured database (a SQLite file beside the embedded event store, or tables
in PostgreSQL) so every server worker and every ``tastebud keys`` / ``tastebud dlq`` command
sees the same state. Backends: ``embedded_gateway.py`` and ``postgres_gateway.py``; one
contract suite (``tests/stores/test_gateway_store_contract.py``) runs against both.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tastebud.stores.errors import Closeable

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "tb_"

DeadLetterKind = Literal["invalid", "transient"]


def hash_key(key: str) -> str:
    """The stored form of a key. Keys are 256-bit random secrets, so a fast hash is enough:
    slow password hashes exist to protect low-entropy secrets, and would cost every request."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A key's record; the secret itself is never stored, only its hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None = None
    rate_per_second: float | None = None
    burst: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """``admin`` implies every scope."""
        return scope in self.scopes or "admin" in self.scopes

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "rate_per_second": self.rate_per_second,
            "burst": self.burst,
        }


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(scope.strip() for scope in scopes if scope.strip()))
    unknown = [scope for scope in cleaned if scope not in SCOPES]
    if unknown or not cleaned:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes)}")
    return cleaned


class ApiKeyStore(Closeable, ABC):
    """API keys with scopes, stored hashed."""

    @abstractmethod
    def insert(self, key: ApiKey, key_hash: str, *, only_if_empty: bool = False) -> bool:
        """Store a key; with ``only_if_empty``, atomically only when no active key exists
        (the first-run admin key, which two starting servers must not both create)."""

    @abstractmethod
    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""

    @abstractmethod
    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""

    @abstractmethod
    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when no active key has this id."""

    def create(
        self,
        scopes: Sequence[str],
        name: str = "",
        *,
        rate_per_second: float | None = None,
        burst: float | None = None,
        only_if_empty: bool = False,
    ) -> tuple[ApiKey, str] | None:
        """A new key and its secret (shown once); None if ``only_if_empty`` and keys exist."""
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            key_id=key_id,
            name=name,
            scopes=check_scopes(scopes),
            created_at=time.time(),
            rate_per_second=rate_per_second,
            burst=burst,
        )
        if not self.insert(record, hash_key(secret), only_if_empty=only_if_empty):
            return None
        return record, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key this secret belongs to, if any."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 256:
            return None
        found = self.find(hash_key(secret))
        return found if found is not None and found.active else None


@dataclass(frozen=True)
class DeadLetter:
    """An event the gateway could not store: why, and the payload to retry it from.

    ``invalid`` entries hold the raw payload as the client sent it; ``transient`` ones hold the
    validated, enriched event, so a retry stores exactly what would have been stored."""

    kind: DeadLetterKind
    payload: str
    reasons: tuple[str, ...]
    message: str = ""
    event_id: str | None = None
    key_id: str | None = None
    request_id: str | None = None
    attempts: int = 1
    created_at: float = field(default_factory=time.time)
    entry_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "kind": self.kind,
            "reasons": list(self.reasons),
            "message": self.message,
            "event_id": self.event_id,
            "key_id": self.key_id,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class DropCounts:
    """Entries the DLQ dropped, by cause: ``cap`` (oldest beyond the size cap), ``ttl``."""

    cap: int = 0
    ttl: int = 0


class DeadLetterStore(Closeable, ABC):
    """The dead-letter queue: bounded by a TTL and a size cap; dropped entries are counted."""

    @abstractmethod
    def add(
        self, entries: Sequence[DeadLetter], *, max_entries: int, ttl_seconds: float
    ) -> list[int]:
        """Store entries (returning their ids), then drop expired entries and the oldest
        beyond ``max_entries``, adding what was dropped to the persistent drop counts."""

    @abstractmethod
    def list_entries(
        self,
        *,
        kind: DeadLetterKind | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Entries ordered by id (oldest first); pass the last id seen as ``after_id``."""

    @abstractmethod
    def get(self, entry_id: int) -> DeadLetter | None: ...

    @abstractmethod
    def delete(self, entry_ids: Sequence[int]) -> int:
        """Remove entries (retried successfully, or purged); returns how many existed."""

    @abstractmethod
    def purge(self, *, kind: DeadLetterKind | None = None, older_than: float | None = None) -> int:
        """Remove every entry (of a kind / created before a time); returns how many."""

    @abstractmethod
    def record_attempt(self, entry_id: int, reasons: Sequence[str], message: str) -> None:
        """A retry failed again: count the attempt and keep the latest reasons."""

    @abstractmethod
    def count(self, *, kind: DeadLetterKind | None = None) -> int: ...

    @abstractmethod
    def dropped(self) -> DropCounts: ...


@dataclass
class GatewayStores(Closeable):
    """The gateway's metadata stores behind one database URL."""

    keys: ApiKeyStore
    dead_letters: DeadLetterStore
    pool: Any = None  # a connection pool these stores own (``open_gateway_stores``), or None

    def close(self) -> None:
        self.keys.close()
        self.dead_letters.close()
        if self.pool is not None:
            self.pool.close()
