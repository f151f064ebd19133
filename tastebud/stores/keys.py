"""API keys: scopes, an optional rate, and only the hash of each secret.

They live in the configured database (``gateway.db`` beside the embedded event store, or the
``api_keys`` table in PostgreSQL) so every server worker and every ``tastebud keys`` command
sees the same keys. One implementation, its SQL written once (``stores/sql.py``); the contract
suite (``tests/stores/test_gateway_store_contract.py``) runs it on both backends.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tastebud.stores.errors import Closeable
from tastebud.stores.sql import SqlBackend, loads

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "tb_"

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes {text_list} NOT NULL,
    created_at {real} NOT NULL,
    revoked_at {real},
    rate_per_second {real},
    burst {real}
);
"""

COLUMNS = "key_id, name, scopes, created_at, revoked_at, rate_per_second, burst"
# Serializes "create the first key only if none exists" between starting servers.
FIRST_KEY_LOCK = 0x7A57EB0E


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


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, scopes, created_at, revoked_at, rate, burst = row
    return ApiKey(key_id, name, tuple(loads(scopes)), created_at, revoked_at, rate, burst)


class ApiKeyStore(Closeable):
    """API keys with scopes, stored hashed, in a SQL backend (which the caller closes)."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        backend.apply_schema("api_keys", backend.dialect.ddl(SCHEMA))

    def insert(self, key: ApiKey, key_hash: str, *, only_if_empty: bool = False) -> bool:
        """Store a key; with ``only_if_empty``, atomically only when no active key exists
        (the first-run admin key, which two starting servers must not both create)."""
        dialect = self.backend.dialect
        with self.backend.write() as sql:
            if only_if_empty:
                dialect.lock(sql, FIRST_KEY_LOCK)
                row = sql.one("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
                if row is not None and row[0]:
                    return False
            sql.execute(
                f"INSERT INTO api_keys ({COLUMNS}, key_hash) VALUES (?,?,?,?,?,?,?,?)",
                (
                    key.key_id,
                    key.name,
                    dialect.text_list(key.scopes),
                    key.created_at,
                    key.revoked_at,
                    key.rate_per_second,
                    key.burst,
                    key_hash,
                ),
            )
        return True

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""
        with self.backend.read() as sql:
            row = sql.one(f"SELECT {COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
        return None if row is None else _key(row)

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self.backend.read(short=False) as sql:
            rows = sql.all(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when no active key has this id."""
        with self.backend.write() as sql:
            cursor = sql.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            return bool(cursor.rowcount > 0)

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
