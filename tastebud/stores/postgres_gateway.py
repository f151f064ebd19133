"""The PostgreSQL gateway metadata: ``api_keys`` and ``dead_letters`` tables in the configured
database, sharing the event store's connection pool."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tastebud.stores.gateway import (
    ApiKey,
    ApiKeyStore,
    DeadLetter,
    DeadLetterKind,
    DeadLetterStore,
    DropCounts,
)
from tastebud.stores.postgres import PostgresDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes TEXT[] NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    rate_per_second DOUBLE PRECISION,
    burst DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    reasons JSONB NOT NULL,
    message TEXT NOT NULL,
    event_id TEXT,
    key_id TEXT,
    request_id TEXT,
    attempts INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at);
CREATE TABLE IF NOT EXISTS dead_letter_drops (cause TEXT PRIMARY KEY, dropped BIGINT NOT NULL);
INSERT INTO dead_letter_drops VALUES ('cap', 0), ('ttl', 0) ON CONFLICT DO NOTHING;
"""

KEY_COLUMNS = "key_id, name, scopes, created_at, revoked_at, rate_per_second, burst"
DLQ_COLUMNS = "kind, payload, reasons, message, event_id, key_id, request_id, attempts, created_at"
# Serializes "create the first key only if none exists" between starting servers.
FIRST_KEY_LOCK = 0x7A57EB0E


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, scopes, created_at, revoked_at, rate, burst = row
    return ApiKey(key_id, name, tuple(scopes), created_at, revoked_at, rate, burst)


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    entry_id, kind, payload, reasons, message, event_id, key_id, request_id, attempts, at = row
    return DeadLetter(
        kind=kind,
        payload=payload,
        reasons=tuple(reasons),
        message=message,
        event_id=event_id,
        key_id=key_id,
        request_id=request_id,
        attempts=attempts,
        created_at=at,
        entry_id=int(entry_id),
    )


class PostgresApiKeyStore(ApiKeyStore):
    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        database.apply_schema("gateway", SCHEMA)

    def insert(self, key: ApiKey, key_hash: str, *, only_if_empty: bool = False) -> bool:
        with self.database.transaction() as connection:
            if only_if_empty:
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (FIRST_KEY_LOCK,))
                row = connection.execute(
                    "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
                ).fetchone()
                if row is not None and row[0]:
                    return False
            connection.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}, key_hash) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    key.key_id,
                    key.name,
                    list(key.scopes),
                    key.created_at,
                    key.revoked_at,
                    key.rate_per_second,
                    key.burst,
                    key_hash,
                ),
            )
        return True

    def find(self, key_hash: str) -> ApiKey | None:
        with self.database.transaction(read_only=True) as connection:
            row = connection.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = %s", (key_hash,)
            ).fetchone()
        return None if row is None else _key(row)

    def list_keys(self) -> list[ApiKey]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self.database.transaction() as connection:
            cursor = connection.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            return cursor.rowcount > 0


class PostgresDeadLetterStore(DeadLetterStore):
    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        database.apply_schema("gateway", SCHEMA)

    def add(
        self, entries: Sequence[DeadLetter], *, max_entries: int, ttl_seconds: float
    ) -> list[int]:
        ids: list[int] = []
        with self.database.transaction() as connection:
            for entry in entries:
                row = connection.execute(
                    f"INSERT INTO dead_letters ({DLQ_COLUMNS})"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                    (
                        entry.kind,
                        entry.payload,
                        Jsonb(list(entry.reasons)),
                        entry.message,
                        entry.event_id,
                        entry.key_id,
                        entry.request_id,
                        entry.attempts,
                        entry.created_at,
                    ),
                ).fetchone()
                assert row is not None
                ids.append(int(row[0]))
            _trim(connection, max_entries, ttl_seconds)
        return ids

    def _select(self, where: str, params: list[Any], limit: int | None = None) -> list[DeadLetter]:
        sql = f"SELECT id, {DLQ_COLUMNS} FROM dead_letters{where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            params = [*params, limit]
        with self.database.transaction() as connection:
            rows = connection.execute(sql, params).fetchall()  # type: ignore[arg-type]
        return [_letter(row) for row in rows]

    def list_entries(
        self,
        *,
        kind: DeadLetterKind | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        clauses, params = _filters(kind=kind, after_id=after_id)
        return self._select(clauses, params, limit)

    def get(self, entry_id: int) -> DeadLetter | None:
        found = self._select(" WHERE id = %s", [entry_id])
        return found[0] if found else None

    def delete(self, entry_ids: Sequence[int]) -> int:
        if not entry_ids:
            return 0
        with self.database.transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM dead_letters WHERE id = ANY(%s)", (sorted(set(entry_ids)),)
            )
            return cursor.rowcount

    def purge(self, *, kind: DeadLetterKind | None = None, older_than: float | None = None) -> int:
        where, params = _filters(kind=kind, older_than=older_than)
        with self.database.transaction() as connection:
            return connection.execute(f"DELETE FROM dead_letters{where}", params).rowcount  # type: ignore[arg-type]

    def record_attempt(self, entry_id: int, reasons: Sequence[str], message: str) -> None:
        with self.database.transaction() as connection:
            connection.execute(
                "UPDATE dead_letters SET attempts = attempts + 1, reasons = %s, message = %s"
                " WHERE id = %s",
                (Jsonb(list(reasons)), message, entry_id),
            )

    def count(self, *, kind: DeadLetterKind | None = None) -> int:
        where, params = _filters(kind=kind)
        with self.database.transaction(read_only=True) as connection:
            row = connection.execute(f"SELECT count(*) FROM dead_letters{where}", params).fetchone()  # type: ignore[arg-type]
        return int(row[0]) if row else 0

    def dropped(self) -> DropCounts:
        with self.database.transaction(read_only=True) as connection:
            rows = dict(connection.execute("SELECT cause, dropped FROM dead_letter_drops"))  # type: ignore[arg-type]
        return DropCounts(cap=int(rows.get("cap", 0)), ttl=int(rows.get("ttl", 0)))


def _filters(
    *,
    kind: DeadLetterKind | None = None,
    after_id: int | None = None,
    older_than: float | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for condition, value in (
        ("kind = %s", kind),
        ("id > %s", after_id),
        ("created_at < %s", older_than),
    ):
        if value is not None:
            clauses.append(condition)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _trim(connection: psycopg.Connection, max_entries: int, ttl_seconds: float) -> None:
    """Drop expired entries, then the oldest beyond the cap, counting both. Concurrent trims
    serialize on the counters row, so each dropped entry is counted once."""
    connection.execute("SELECT 1 FROM dead_letter_drops FOR UPDATE")
    expired = connection.execute(
        "DELETE FROM dead_letters WHERE created_at < %s", (time.time() - ttl_seconds,)
    ).rowcount
    over = connection.execute(
        "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET %s", (max_entries,)
    ).fetchone()
    capped = 0
    if over is not None:
        capped = connection.execute("DELETE FROM dead_letters WHERE id <= %s", over).rowcount
    for cause, dropped in (("ttl", expired), ("cap", capped)):
        if dropped:
            connection.execute(
                "UPDATE dead_letter_drops SET dropped = dropped + %s WHERE cause = %s",
                (dropped, cause),
            )
