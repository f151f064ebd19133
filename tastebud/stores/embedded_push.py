"""The embedded push store: subscriptions, the sent log and the VAPID keys in one SQLite file
(``push.db`` beside the event store), written through the shared writer lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tastebud.stores.push import PushStore, PushSubscription, SentPush, VapidKeys
from tastebud.stores.sqlite import SqliteDatabase, chunks, placeholders

SCHEMA = """
CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    timezone TEXT,
    expires_at REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE IF NOT EXISTS push_sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    push_id TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS push_sent_user ON push_sent (user_id, sent_at);
CREATE TABLE IF NOT EXISTS push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

SUBSCRIPTION_COLUMNS = "endpoint, user_id, p256dh, auth, timezone, expires_at, created_at"
SENT_COLUMNS = "user_id, item_id, kind, push_id, sent_at"


def _subscription(row: tuple[Any, ...]) -> PushSubscription:
    return PushSubscription(*row)


class EmbeddedPushStore(PushStore):
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, SCHEMA)

    def subscribe(self, subscription: PushSubscription, *, replaces: str | None = None) -> bool:
        with self._db.write() as connection:
            if replaces is not None and replaces != subscription.endpoint:
                connection.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", (replaces,))
            existed = connection.execute(
                "SELECT 1 FROM push_subscriptions WHERE endpoint = ?", (subscription.endpoint,)
            ).fetchone()
            connection.execute(
                f"INSERT OR REPLACE INTO push_subscriptions ({SUBSCRIPTION_COLUMNS})"
                " VALUES (?,?,?,?,?,?,?)",
                _row(subscription),
            )
        return existed is None

    def unsubscribe(self, user_id: str, endpoint: str | None = None) -> int:
        sql, params = "DELETE FROM push_subscriptions WHERE user_id = ?", [user_id]
        if endpoint is not None:
            sql += " AND endpoint = ?"
            params.append(endpoint)
        with self._db.write() as connection:
            return connection.execute(sql, params).rowcount

    def remove(self, endpoints: Sequence[str]) -> int:
        removed = 0
        with self._db.write() as connection:
            for chunk in chunks(sorted(set(endpoints))):
                marks = placeholders(len(chunk))
                removed += connection.execute(
                    f"DELETE FROM push_subscriptions WHERE endpoint IN ({marks})", chunk
                ).rowcount
        return removed

    def get(self, endpoint: str) -> PushSubscription | None:
        row = (
            self._db.connection()
            .execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE endpoint = ?",
                (endpoint,),
            )
            .fetchone()
        )
        return None if row is None else _subscription(row)

    def subscriptions(self, user_id: str) -> list[PushSubscription]:
        rows = self._db.connection().execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE user_id = ?"
            " ORDER BY created_at, endpoint",
            (user_id,),
        )
        return [_subscription(row) for row in rows]

    def subscribed_users(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        rows = self._db.connection().execute(
            "SELECT DISTINCT user_id FROM push_subscriptions WHERE user_id > ?"
            " ORDER BY user_id LIMIT ?",
            (after or "", limit),
        )
        return [row[0] for row in rows]

    def count(self) -> int:
        (total,) = (
            self._db.connection().execute("SELECT count(*) FROM push_subscriptions").fetchone()
        )
        return int(total)

    def record_sent(self, sent: Sequence[SentPush]) -> None:
        if not sent:
            return
        with self._db.write() as connection:
            connection.executemany(
                f"INSERT INTO push_sent ({SENT_COLUMNS}) VALUES (?,?,?,?,?)",
                [(s.user_id, s.item_id, s.kind, s.push_id, s.sent_at) for s in sent],
            )

    def sent_since(self, user_id: str, since: float) -> list[SentPush]:
        rows = self._db.connection().execute(
            f"SELECT {SENT_COLUMNS} FROM push_sent WHERE user_id = ? AND sent_at >= ?"
            " ORDER BY sent_at, id",
            (user_id, since),
        )
        return [SentPush(*row) for row in rows]

    def prune_sent(self, older_than: float) -> int:
        with self._db.write() as connection:
            return connection.execute(
                "DELETE FROM push_sent WHERE sent_at < ?", (older_than,)
            ).rowcount

    def vapid_keys(self) -> VapidKeys | None:
        row = (
            self._db.connection()
            .execute("SELECT private_pem, public_key, created_at FROM push_vapid WHERE id = 1")
            .fetchone()
        )
        return None if row is None else VapidKeys(*row)

    def save_vapid_keys(self, keys: VapidKeys, *, replace: bool = False) -> bool:
        with self._db.write() as connection:
            return _save_keys(connection, keys, replace)

    def close(self) -> None:
        self._db.close()


def _row(subscription: PushSubscription) -> tuple[Any, ...]:
    s = subscription
    return (s.endpoint, s.user_id, s.p256dh, s.auth, s.timezone, s.expires_at, s.created_at)


def _save_keys(connection: sqlite3.Connection, keys: VapidKeys, replace: bool) -> bool:
    existing = connection.execute("SELECT 1 FROM push_vapid WHERE id = 1").fetchone()
    if existing is not None and not replace:
        return False
    if existing is not None:
        connection.execute("DELETE FROM push_subscriptions")
    connection.execute(
        "INSERT OR REPLACE INTO push_vapid (id, private_pem, public_key, created_at)"
        " VALUES (1, ?, ?, ?)",
        (keys.private_pem, keys.public_key, keys.created_at),
    )
    return True
