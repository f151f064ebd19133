"""The dead-letter queue: events the gateway could not store, bounded by a TTL and a size cap.

It lives in the configured database (``gateway.db`` beside the embedded event store, or the
``dead_letters`` tables in PostgreSQL) so every server worker and every ``tastebud dlq``
command sees the same entries. One implementation, its SQL written once (``stores/sql.py``);
the contract suite (``tests/stores/test_gateway_store_contract.py``) runs it on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tastebud.stores.errors import Closeable
from tastebud.stores.sql import Sql, SqlBackend, loads, where

DeadLetterKind = Literal["invalid", "transient"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id {identity},
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    reasons {json} NOT NULL,
    message TEXT NOT NULL,
    event_id TEXT,
    key_id TEXT,
    request_id TEXT,
    attempts INTEGER NOT NULL,
    created_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at);
CREATE TABLE IF NOT EXISTS dead_letter_drops (cause TEXT PRIMARY KEY, dropped {bigint} NOT NULL);
INSERT INTO dead_letter_drops VALUES ('cap', 0), ('ttl', 0) ON CONFLICT DO NOTHING;
"""

COLUMNS = "kind, payload, reasons, message, event_id, key_id, request_id, attempts, created_at"


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


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    entry_id, kind, payload, reasons, message, event_id, key_id, request_id, attempts, at = row
    return DeadLetter(
        kind=kind,
        payload=payload,
        reasons=tuple(loads(reasons)),
        message=message,
        event_id=event_id,
        key_id=key_id,
        request_id=request_id,
        attempts=attempts,
        created_at=at,
        entry_id=int(entry_id),
    )


class DeadLetterStore(Closeable):
    """The dead-letter queue in a SQL backend (which the caller closes); dropped entries are
    counted."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        backend.apply_schema("dead_letters", backend.dialect.ddl(SCHEMA))

    def add(
        self, entries: Sequence[DeadLetter], *, max_entries: int, ttl_seconds: float
    ) -> list[int]:
        """Store entries (returning their ids), then drop expired entries and the oldest
        beyond ``max_entries``, adding what was dropped to the persistent drop counts."""
        dialect = self.backend.dialect
        ids: list[int] = []
        with self.backend.write() as sql:
            for entry in entries:
                row = sql.one(
                    f"INSERT INTO dead_letters ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
                    (
                        entry.kind,
                        entry.payload,
                        dialect.json(list(entry.reasons)),
                        entry.message,
                        entry.event_id,
                        entry.key_id,
                        entry.request_id,
                        entry.attempts,
                        entry.created_at,
                    ),
                )
                assert row is not None
                ids.append(int(row[0]))
            self._trim(sql, max_entries, ttl_seconds)
        return ids

    def _trim(self, sql: Sql, max_entries: int, ttl_seconds: float) -> None:
        """Drop expired entries, then the oldest beyond the cap, counting both. Concurrent
        trims serialize on the counters' rows (PostgreSQL; SQLite has one writer), so each
        dropped entry is counted once."""
        if self.backend.dialect.for_update:
            sql.execute(f"SELECT 1 FROM dead_letter_drops{self.backend.dialect.for_update}")
        expired = sql.execute(
            "DELETE FROM dead_letters WHERE created_at < ?", (time.time() - ttl_seconds,)
        ).rowcount
        over = sql.one(
            "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?", (max_entries,)
        )
        capped = 0
        if over is not None:
            capped = sql.execute("DELETE FROM dead_letters WHERE id <= ?", over).rowcount
        for cause, dropped in (("ttl", expired), ("cap", capped)):
            if dropped:
                sql.execute(
                    "UPDATE dead_letter_drops SET dropped = dropped + ? WHERE cause = ?",
                    (dropped, cause),
                )

    def list_entries(
        self,
        *,
        kind: DeadLetterKind | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Entries ordered by id (oldest first); pass the last id seen as ``after_id``."""
        clause, params = where([("kind = ?", kind), ("id > ?", after_id)])
        return self._select(f"{clause} ORDER BY id LIMIT ?", [*params, limit])

    def get(self, entry_id: int) -> DeadLetter | None:
        found = self._select(" WHERE id = ?", [entry_id])
        return found[0] if found else None

    def _select(self, rest: str, params: list[Any]) -> list[DeadLetter]:
        with self.backend.read(short=False) as sql:
            rows = sql.all(f"SELECT id, {COLUMNS} FROM dead_letters{rest}", params)
        return [_letter(row) for row in rows]

    def delete(self, entry_ids: Sequence[int]) -> int:
        """Remove entries (retried successfully, or purged); returns how many existed."""
        if not entry_ids:
            return 0
        deleted = 0
        with self.backend.write() as sql:
            for condition, params in self.backend.dialect.any_of("id", sorted(set(entry_ids))):
                deleted += sql.execute(
                    f"DELETE FROM dead_letters WHERE {condition}", params
                ).rowcount
        return deleted

    def purge(self, *, kind: DeadLetterKind | None = None, older_than: float | None = None) -> int:
        """Remove every entry (of a kind / created before a time); returns how many."""
        clause, params = where([("kind = ?", kind), ("created_at < ?", older_than)])
        with self.backend.write() as sql:
            return int(sql.execute(f"DELETE FROM dead_letters{clause}", params).rowcount)

    def record_attempt(self, entry_id: int, reasons: Sequence[str], message: str) -> None:
        """A retry failed again: count the attempt and keep the latest reasons."""
        with self.backend.write() as sql:
            sql.execute(
                "UPDATE dead_letters SET attempts = attempts + 1, reasons = ?, message = ?"
                " WHERE id = ?",
                (self.backend.dialect.json(list(reasons)), message, entry_id),
            )

    def count(self, *, kind: DeadLetterKind | None = None) -> int:
        clause, params = where([("kind = ?", kind)])
        with self.backend.read() as sql:
            row = sql.one(f"SELECT count(*) FROM dead_letters{clause}", params)
        return int(row[0]) if row else 0

    def dropped(self) -> DropCounts:
        with self.backend.read() as sql:
            rows = dict(sql.all("SELECT cause, dropped FROM dead_letter_drops"))
        return DropCounts(cap=int(rows.get("cap", 0)), ttl=int(rows.get("ttl", 0)))
