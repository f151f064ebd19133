"""The embedded gateway metadata: API keys and the dead-letter queue in one SQLite file (WAL),
its own file so key lookups and DLQ writes never wait behind an event append."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tastebud.stores.gateway import (
    ApiKey,
    ApiKeyStore,
    DeadLetter,
    DeadLetterKind,
    DeadLetterStore,
    DropCounts,
)
from tastebud.stores.sqlite import SqliteDatabase, chunks, placeholders

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    rate_per_second REAL,
    burst REAL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    reasons TEXT NOT NULL,
    message TEXT NOT NULL,
    event_id TEXT,
    key_id TEXT,
    request_id TEXT,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at);
CREATE TABLE IF NOT EXISTS dead_letter_drops (cause TEXT PRIMARY KEY, dropped INTEGER NOT NULL);
INSERT OR IGNORE INTO dead_letter_drops VALUES ('cap', 0), ('ttl', 0);
"""

KEY_COLUMNS = "key_id, name, scopes, created_at, revoked_at, rate_per_second, burst"
DLQ_COLUMNS = (
    "id, kind, payload, reasons, message, event_id, key_id, request_id, attempts, created_at"
)


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, scopes, created_at, revoked_at, rate, burst = row
    return ApiKey(key_id, name, tuple(json.loads(scopes)), created_at, revoked_at, rate, burst)


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    entry_id, kind, payload, reasons, message, event_id, key_id, request_id, attempts, at = row
    return DeadLetter(
        kind=kind,
        payload=payload,
        reasons=tuple(json.loads(reasons)),
        message=message,
        event_id=event_id,
        key_id=key_id,
        request_id=request_id,
        attempts=attempts,
        created_at=at,
        entry_id=entry_id,
    )


class EmbeddedApiKeyStore(ApiKeyStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def insert(self, key: ApiKey, key_hash: str, *, only_if_empty: bool = False) -> bool:
        with self._db.write() as connection:
            if only_if_empty:
                (active,) = connection.execute(
                    "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
                ).fetchone()
                if active:
                    return False
            connection.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}, key_hash) VALUES (?,?,?,?,?,?,?,?)",
                (
                    key.key_id,
                    key.name,
                    json.dumps(list(key.scopes)),
                    key.created_at,
                    key.revoked_at,
                    key.rate_per_second,
                    key.burst,
                    key_hash,
                ),
            )
        return True

    def find(self, key_hash: str) -> ApiKey | None:
        row = (
            self._db.connection()
            .execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
            .fetchone()
        )
        return None if row is None else _key(row)

    def list_keys(self) -> list[ApiKey]:
        rows = self._db.connection().execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
        )
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self._db.write() as connection:
            cursor = connection.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
        return cursor.rowcount > 0

    def close(self) -> None:
        self._db.close()


class EmbeddedDeadLetterStore(DeadLetterStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def add(
        self, entries: Sequence[DeadLetter], *, max_entries: int, ttl_seconds: float
    ) -> list[int]:
        ids: list[int] = []
        with self._db.write() as connection:
            for entry in entries:
                cursor = connection.execute(
                    f"INSERT INTO dead_letters ({DLQ_COLUMNS}) VALUES (NULL,?,?,?,?,?,?,?,?,?)",
                    (
                        entry.kind,
                        entry.payload,
                        json.dumps(list(entry.reasons)),
                        entry.message,
                        entry.event_id,
                        entry.key_id,
                        entry.request_id,
                        entry.attempts,
                        entry.created_at,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
            _trim(connection, max_entries, ttl_seconds)
        return ids

    def list_entries(
        self,
        *,
        kind: DeadLetterKind | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        clauses, params = [], []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if after_id is not None:
            clauses.append("id > ?")
            params.append(after_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.connection().execute(
            f"SELECT {DLQ_COLUMNS} FROM dead_letters{where} ORDER BY id LIMIT ?",
            [*params, limit],
        )
        return [_letter(row) for row in rows]

    def get(self, entry_id: int) -> DeadLetter | None:
        row = (
            self._db.connection()
            .execute(f"SELECT {DLQ_COLUMNS} FROM dead_letters WHERE id = ?", (entry_id,))
            .fetchone()
        )
        return None if row is None else _letter(row)

    def delete(self, entry_ids: Sequence[int]) -> int:
        deleted = 0
        with self._db.write() as connection:
            for chunk in chunks(sorted(set(entry_ids))):
                deleted += connection.execute(
                    f"DELETE FROM dead_letters WHERE id IN ({placeholders(len(chunk))})", chunk
                ).rowcount
        return deleted

    def purge(self, *, kind: DeadLetterKind | None = None, older_than: float | None = None) -> int:
        clauses, params = [], []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if older_than is not None:
            clauses.append("created_at < ?")
            params.append(older_than)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._db.write() as connection:
            return connection.execute(f"DELETE FROM dead_letters{where}", params).rowcount

    def record_attempt(self, entry_id: int, reasons: Sequence[str], message: str) -> None:
        with self._db.write() as connection:
            connection.execute(
                "UPDATE dead_letters SET attempts = attempts + 1, reasons = ?, message = ?"
                " WHERE id = ?",
                (json.dumps(list(reasons)), message, entry_id),
            )

    def count(self, *, kind: DeadLetterKind | None = None) -> int:
        sql, params = "SELECT count(*) FROM dead_letters", []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        (total,) = self._db.connection().execute(sql, params).fetchone()
        return int(total)

    def dropped(self) -> DropCounts:
        rows = dict(self._db.connection().execute("SELECT cause, dropped FROM dead_letter_drops"))
        return DropCounts(cap=int(rows.get("cap", 0)), ttl=int(rows.get("ttl", 0)))

    def close(self) -> None:
        self._db.close()


def _trim(connection: sqlite3.Connection, max_entries: int, ttl_seconds: float) -> None:
    """Drop expired entries, then the oldest beyond the cap, counting both."""
    expired = connection.execute(
        "DELETE FROM dead_letters WHERE created_at < ?", (time.time() - ttl_seconds,)
    ).rowcount
    over = connection.execute(
        "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?", (max_entries,)
    ).fetchone()
    capped = 0
    if over is not None:
        capped = connection.execute("DELETE FROM dead_letters WHERE id <= ?", over).rowcount
    for cause, dropped in (("ttl", expired), ("cap", capped)):
        if dropped:
            connection.execute(
                "UPDATE dead_letter_drops SET dropped = dropped + ? WHERE cause = ?",
                (dropped, cause),
            )


def open_embedded_gateway(path: Path) -> tuple[EmbeddedApiKeyStore, EmbeddedDeadLetterStore]:
    """Both stores over one SQLite file; closing either closes it (closing twice is safe)."""
    db = SqliteDatabase(path, SCHEMA)
    return EmbeddedApiKeyStore(db), EmbeddedDeadLetterStore(db)
