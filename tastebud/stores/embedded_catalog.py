"""The embedded catalog: items and users in one SQLite file (WAL), upserted row by row."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tastebud.schemas import Item, User
from tastebud.stores.base import CatalogStore
from tastebud.stores.sqlite import SqliteDatabase, chunks, placeholders

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    title TEXT,
    creator TEXT,
    categories TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER,
    attributes TEXT NOT NULL DEFAULT '{}',
    active INTEGER NOT NULL DEFAULT 1,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_updated ON items (updated_at);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    created_at INTEGER,
    attributes TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL
);
"""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ITEM_COLUMNS = "item_id, title, creator, categories, created_at, attributes, active"
USER_COLUMNS = "user_id, created_at, attributes"


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - EPOCH) // timedelta(microseconds=1)


def _datetime(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _item(row: tuple[Any, ...]) -> Item:
    item_id, title, creator, categories, created_at, attributes, active = row
    return Item.model_construct(
        item_id=item_id,
        title=title,
        creator=creator,
        categories=json.loads(categories),
        created_at=_datetime(created_at),
        attributes=json.loads(attributes),
        active=bool(active),
    )


def _user(row: tuple[Any, ...]) -> User:
    user_id, created_at, attributes = row
    return User.model_construct(
        user_id=user_id, created_at=_datetime(created_at), attributes=json.loads(attributes)
    )


class EmbeddedCatalogStore(CatalogStore):
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, SCHEMA)

    def upsert_items(self, items: Sequence[Item]) -> int:
        now = time.time()
        rows = [
            (
                item.item_id,
                item.title,
                item.creator,
                _json(item.categories),
                _micros(item.created_at),
                _json(item.attributes),
                int(item.active),
                now,
            )
            for item in items
        ]
        with self._db.write() as connection:
            connection.executemany(
                f"INSERT INTO items ({ITEM_COLUMNS}, updated_at) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT (item_id) DO UPDATE SET title = excluded.title,"
                " creator = excluded.creator, categories = excluded.categories,"
                " created_at = excluded.created_at, attributes = excluded.attributes,"
                " active = excluded.active, updated_at = excluded.updated_at",
                rows,
            )
        return len(rows)

    def upsert_users(self, users: Sequence[User]) -> int:
        now = time.time()
        rows = [
            (user.user_id, _micros(user.created_at), _json(user.attributes), now) for user in users
        ]
        with self._db.write() as connection:
            connection.executemany(
                f"INSERT INTO users ({USER_COLUMNS}, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (user_id) DO UPDATE SET created_at = excluded.created_at,"
                " attributes = excluded.attributes, updated_at = excluded.updated_at",
                rows,
            )
        return len(rows)

    def _by_ids(
        self, table: str, key: str, columns: str, ids: Sequence[str], parse: Callable[..., Any]
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        connection = self._db.connection()
        for chunk in chunks(list(ids)):
            marks = placeholders(len(chunk))
            for row in connection.execute(
                f"SELECT {columns} FROM {table} WHERE {key} IN ({marks})", chunk
            ):
                found[row[0]] = parse(row)
        return found

    def get_items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        return self._by_ids("items", "item_id", ITEM_COLUMNS, item_ids, _item)

    def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        return self._by_ids("users", "user_id", USER_COLUMNS, user_ids, _user)

    def list_items(
        self,
        *,
        active: bool | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Item]:
        clauses, params = _item_filter(active, category)
        if after is not None:
            clauses.append("item_id > ?")
            params.append(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.connection().execute(
            f"SELECT {ITEM_COLUMNS} FROM items{where} ORDER BY item_id LIMIT ?",
            [*params, limit],
        )
        return [_item(row) for row in rows]

    def items_changed_since(
        self, since: float | None, *, page: int = 10_000
    ) -> tuple[list[Item], float]:
        watermark = time.time()  # before the read: a row it misses commits after this
        # Without statistics SQLite would walk the whole primary key for ORDER BY item_id and
        # test every row; the updated_at index reads only the recent rows.
        source = "items" if since is None else "items INDEXED BY items_updated"
        items: list[Item] = []
        after: str | None = None
        connection = self._db.connection()
        while True:
            clauses: list[str] = []
            params: list[Any] = []
            if since is not None:
                clauses.append("updated_at >= ?")
                params.append(since - self.change_overlap_seconds)
            if after is not None:
                clauses.append("item_id > ?")
                params.append(after)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            batch = [
                _item(row)
                for row in connection.execute(
                    f"SELECT {ITEM_COLUMNS} FROM {source}{where} ORDER BY item_id LIMIT ?",
                    [*params, page],
                )
            ]
            items.extend(batch)
            if len(batch) < page:
                return items, watermark
            after = batch[-1].item_id

    def list_users(self, *, after: str | None = None, limit: int = 100) -> list[User]:
        where, params = (" WHERE user_id > ?", [after]) if after is not None else ("", [])
        rows = self._db.connection().execute(
            f"SELECT {USER_COLUMNS} FROM users{where} ORDER BY user_id LIMIT ?", [*params, limit]
        )
        return [_user(row) for row in rows]

    def count_items(self, *, active: bool | None = None) -> int:
        clauses, params = _item_filter(active, None)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        (count,) = (
            self._db.connection().execute(f"SELECT count(*) FROM items{where}", params).fetchone()
        )
        return int(count)

    def count_users(self) -> int:
        (count,) = self._db.connection().execute("SELECT count(*) FROM users").fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()


def _item_filter(active: bool | None, category: str | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if active is not None:
        clauses.append("active = ?")
        params.append(int(active))
    if category is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(items.categories) WHERE value = ?)")
        params.append(category)
    return clauses, params
