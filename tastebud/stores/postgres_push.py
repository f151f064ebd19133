"""The PostgreSQL push store: ``push_subscriptions``, ``push_sent`` and ``push_vapid`` tables
in the configured database, on the event store's connection pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tastebud.stores.postgres import PostgresDatabase
from tastebud.stores.push import PushStore, PushSubscription, SentPush, VapidKeys

SCHEMA = """
CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    timezone TEXT,
    expires_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE IF NOT EXISTS push_sent (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    push_id TEXT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS push_sent_user ON push_sent (user_id, sent_at);
CREATE TABLE IF NOT EXISTS push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
"""

SUBSCRIPTION_COLUMNS = "endpoint, user_id, p256dh, auth, timezone, expires_at, created_at"
SENT_COLUMNS = "user_id, item_id, kind, push_id, sent_at"


class PostgresPushStore(PushStore):
    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        database.apply_schema("push", SCHEMA)

    def subscribe(self, subscription: PushSubscription, *, replaces: str | None = None) -> bool:
        s = subscription
        with self.database.transaction() as connection:
            if replaces is not None and replaces != s.endpoint:
                connection.execute(
                    "DELETE FROM push_subscriptions WHERE endpoint = %s", (replaces,)
                )
            row = connection.execute(
                f"INSERT INTO push_subscriptions ({SUBSCRIPTION_COLUMNS})"
                " VALUES (%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id,"
                " p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, timezone = EXCLUDED.timezone,"
                " expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at"
                " RETURNING (xmax = 0)",
                (s.endpoint, s.user_id, s.p256dh, s.auth, s.timezone, s.expires_at, s.created_at),
            ).fetchone()
        return bool(row and row[0])

    def unsubscribe(self, user_id: str, endpoint: str | None = None) -> int:
        sql, params = "DELETE FROM push_subscriptions WHERE user_id = %s", [user_id]
        if endpoint is not None:
            sql += " AND endpoint = %s"
            params.append(endpoint)
        with self.database.transaction() as connection:
            return connection.execute(sql, params).rowcount  # type: ignore[arg-type]

    def remove(self, endpoints: Sequence[str]) -> int:
        if not endpoints:
            return 0
        with self.database.transaction() as connection:
            return connection.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = ANY(%s)", (sorted(set(endpoints)),)
            ).rowcount

    def get(self, endpoint: str) -> PushSubscription | None:
        with self.database.transaction() as connection:
            row = connection.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE endpoint = %s",
                (endpoint,),
            ).fetchone()
        return None if row is None else PushSubscription(*row)

    def subscriptions(self, user_id: str) -> list[PushSubscription]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE user_id = %s"
                " ORDER BY created_at, endpoint",
                (user_id,),
            ).fetchall()
        return [PushSubscription(*row) for row in rows]

    def subscribed_users(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                "SELECT DISTINCT user_id FROM push_subscriptions WHERE user_id > %s"
                " ORDER BY user_id LIMIT %s",
                (after or "", limit),
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        with self.database.transaction() as connection:
            row = connection.execute("SELECT count(*) FROM push_subscriptions").fetchone()
        return int(row[0]) if row else 0

    def record_sent(self, sent: Sequence[SentPush]) -> None:
        if not sent:
            return
        with self.database.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO push_sent ({SENT_COLUMNS}) VALUES (%s,%s,%s,%s,%s)",
                [(s.user_id, s.item_id, s.kind, s.push_id, s.sent_at) for s in sent],
            )

    def sent_since(self, user_id: str, since: float) -> list[SentPush]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {SENT_COLUMNS} FROM push_sent WHERE user_id = %s AND sent_at >= %s"
                " ORDER BY sent_at, id",
                (user_id, since),
            ).fetchall()
        return [SentPush(*row) for row in rows]

    def prune_sent(self, older_than: float) -> int:
        with self.database.transaction() as connection:
            return connection.execute(
                "DELETE FROM push_sent WHERE sent_at < %s", (older_than,)
            ).rowcount

    def vapid_keys(self) -> VapidKeys | None:
        with self.database.transaction() as connection:
            row = connection.execute(
                "SELECT private_pem, public_key, created_at FROM push_vapid WHERE id = 1"
            ).fetchone()
        return None if row is None else VapidKeys(*row)

    def save_vapid_keys(self, keys: VapidKeys, *, replace: bool = False) -> bool:
        with self.database.transaction() as connection:
            # Serializes two `push keys` runs: the row lock, or the insert's key conflict.
            existing: Any = connection.execute(
                "SELECT 1 FROM push_vapid WHERE id = 1 FOR UPDATE"
            ).fetchone()
            if existing is not None and not replace:
                return False
            if existing is not None:
                connection.execute("DELETE FROM push_subscriptions")
            inserted = connection.execute(
                "INSERT INTO push_vapid (id, private_pem, public_key, created_at)"
                " VALUES (1, %s, %s, %s) ON CONFLICT (id) DO "
                + (
                    "UPDATE SET private_pem = EXCLUDED.private_pem,"
                    " public_key = EXCLUDED.public_key, created_at = EXCLUDED.created_at"
                    if replace
                    else "NOTHING"
                ),
                (keys.private_pem, keys.public_key, keys.created_at),
            ).rowcount
        return inserted > 0

    def close(self) -> None:
        """The pool belongs to the event store, which closes it."""
