"""The catalog: items and users, upserted row by row, in SQLite (``catalog.db``, WAL) or
PostgreSQL (categories as ``text[]`` with a GIN index).

One implementation, its SQL written once (``stores/sql.py``). What the catalog says
differently on each backend is the ``Spelling`` below, kept as the tables have always been:
SQLite holds ``created_at`` as microseconds and ``updated_at`` as the writer's clock (epoch
seconds, taken before it waits for the write lock); PostgreSQL holds both as ``timestamptz``,
``updated_at`` being ``now()``, the writing transaction's start. Ids sort in code point order
on both (``POSTGRES_TO_BYTE_ORDER``), whatever the database's collation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tastebud.schemas import Item, User
from tastebud.stores.base import CatalogStore
from tastebud.stores.sql import SqlBackend, loads, where

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT{byte_order} PRIMARY KEY,
    title TEXT,
    creator TEXT,
    categories {text_list} NOT NULL DEFAULT {empty_list},
    created_at {instant},
    attributes {json} NOT NULL DEFAULT '{{}}',
    active {boolean} NOT NULL DEFAULT {true},
    updated_at {stamp}
);
CREATE INDEX IF NOT EXISTS items_updated ON items (updated_at);
{category_index}
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT{byte_order} PRIMARY KEY,
    created_at {instant},
    attributes {json} NOT NULL DEFAULT '{{}}',
    updated_at {stamp}
);
{to_byte_order}
"""

# PostgreSQL compares text in the database's collation (en_US.utf8 in the official image:
# "aB" < "ab" < "a-c" < "B"), so "ids after X" pages, and a prefix search reading them,
# differed from SQLite's byte order. Ids are "C"-collated, code point order on both; a
# catalog created before is moved over once (its primary-key index rebuilt, not its rows).
POSTGRES_TO_BYTE_ORDER = """
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND (table_name, column_name) IN (('items', 'item_id'), ('users', 'user_id'))
          AND collation_name IS DISTINCT FROM 'C'
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE TEXT COLLATE "C"',
                       target.table_name, target.column_name);
    END LOOP;
END $$;
"""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ITEM_COLUMNS = "item_id, title, creator, categories, created_at, attributes, active"
USER_COLUMNS = "user_id, created_at, attributes"


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - EPOCH) // timedelta(microseconds=1)


def _instant(value: Any) -> datetime | None:
    """``created_at`` as read: microseconds (SQLite) or a datetime (PostgreSQL)."""
    return EPOCH + timedelta(microseconds=value) if isinstance(value, int) else value


def _json(value: Any) -> str:
    """SQLite's text of categories and attributes: compact, as earlier versions wrote it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Spelling:
    """What the catalog's SQL says differently on one backend."""

    instant: str  # the type of created_at
    stamp: str  # the column updated_at
    stamped: str  # the value written to updated_at: "?" takes the writer's clock
    since: str  # updated_at compared with epoch seconds
    has_category: str  # a condition: the item has the category given
    by_update: str  # how a read of recent changes names the table
    category_index: str
    byte_order: str  # an id column's collation: code point order
    to_byte_order: str  # moves an earlier catalog's ids to it
    to_instant: Callable[[datetime | None], Any]


SPELLINGS = {
    "sqlite": Spelling(
        instant="INTEGER",
        stamp="REAL NOT NULL",
        stamped="?",
        since="?",
        has_category="EXISTS (SELECT 1 FROM json_each(items.categories) WHERE value = ?)",
        # Without statistics SQLite would walk the whole primary key for ORDER BY item_id
        # and test every row; the updated_at index reads only the recent rows.
        by_update="items INDEXED BY items_updated",
        category_index="",
        byte_order="",  # SQLite's BINARY already is
        to_byte_order="",
        to_instant=_micros,
    ),
    "postgresql": Spelling(
        instant="TIMESTAMPTZ",
        stamp="TIMESTAMPTZ NOT NULL DEFAULT now()",
        stamped="now()",
        since="to_timestamp(?)",
        has_category="categories @> ARRAY[?]::text[]",
        by_update="items",
        category_index="CREATE INDEX IF NOT EXISTS items_categories"
        " ON items USING GIN (categories);",
        byte_order=' COLLATE "C"',
        to_byte_order=POSTGRES_TO_BYTE_ORDER,
        to_instant=lambda value: value,
    ),
}


def _item(row: tuple[Any, ...]) -> Item:
    item_id, title, creator, categories, created_at, attributes, active = row
    return Item.model_construct(
        item_id=item_id,
        title=title,
        creator=creator,
        categories=list(loads(categories)),
        created_at=_instant(created_at),
        attributes=loads(attributes),
        active=bool(active),
    )


def _user(row: tuple[Any, ...]) -> User:
    user_id, created_at, attributes = row
    return User.model_construct(
        user_id=user_id, created_at=_instant(created_at), attributes=loads(attributes)
    )


class SqlCatalogStore(CatalogStore):
    """The catalog in a SQL backend; closing the store closes the backend (a no-op for a
    PostgreSQL pool the event store owns)."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        self.spelling = SPELLINGS[backend.dialect.name]
        spelling = self.spelling
        ddl = backend.dialect.ddl(
            SCHEMA,
            instant=spelling.instant,
            stamp=spelling.stamp,
            category_index=spelling.category_index,
            byte_order=spelling.byte_order,
            to_byte_order=spelling.to_byte_order,
        )
        backend.apply_schema("catalog", ddl)

    def _clock(self) -> tuple[float, ...]:
        """The parameter of ``stamped``: the writer's clock, when it takes one."""
        return (time.time(),) if self.spelling.stamped == "?" else ()

    def upsert_items(self, items: Sequence[Item]) -> int:
        dialect, instant = self.backend.dialect, self.spelling.to_instant
        clock = self._clock()
        rows = [
            (
                item.item_id,
                item.title,
                item.creator,
                dialect.text_list(item.categories, _json),
                instant(item.created_at),
                dialect.json(item.attributes, _json),
                dialect.boolean(item.active),
                *clock,
            )
            for item in items
        ]
        with self.backend.write() as sql:
            sql.many(
                f"INSERT INTO items ({ITEM_COLUMNS}, updated_at)"
                f" VALUES (?,?,?,?,?,?,?,{self.spelling.stamped})"
                " ON CONFLICT (item_id) DO UPDATE SET title = excluded.title,"
                " creator = excluded.creator, categories = excluded.categories,"
                " created_at = excluded.created_at, attributes = excluded.attributes,"
                " active = excluded.active, updated_at = excluded.updated_at",
                rows,
            )
        return len(rows)

    def upsert_users(self, users: Sequence[User]) -> int:
        dialect, instant = self.backend.dialect, self.spelling.to_instant
        clock = self._clock()
        rows = [
            (user.user_id, instant(user.created_at), dialect.json(user.attributes, _json), *clock)
            for user in users
        ]
        with self.backend.write() as sql:
            sql.many(
                f"INSERT INTO users ({USER_COLUMNS}, updated_at)"
                f" VALUES (?,?,?,{self.spelling.stamped})"
                " ON CONFLICT (user_id) DO UPDATE SET created_at = excluded.created_at,"
                " attributes = excluded.attributes, updated_at = excluded.updated_at",
                rows,
            )
        return len(rows)

    def _by_ids(
        self, table: str, key: str, columns: str, ids: Sequence[str], parse: Callable[..., Any]
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self.backend.read() as sql:
            for condition, params in self.backend.dialect.any_of(key, list(ids)):
                for row in sql.all(f"SELECT {columns} FROM {table} WHERE {condition}", params):
                    found[row[0]] = parse(row)
        return found

    def get_items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        return self._by_ids("items", "item_id", ITEM_COLUMNS, item_ids, _item)

    def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        return self._by_ids("users", "user_id", USER_COLUMNS, user_ids, _user)

    def _item_filter(self, active: bool | None, category: str | None) -> list[tuple[str, Any]]:
        flag = None if active is None else self.backend.dialect.boolean(active)
        return [("active = ?", flag), (self.spelling.has_category, category)]

    def list_items(
        self,
        *,
        active: bool | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Item]:
        clause, params = where([*self._item_filter(active, category), ("item_id > ?", after)])
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT {ITEM_COLUMNS} FROM items{clause} ORDER BY item_id LIMIT ?",
                [*params, limit],
            )
        return [_item(row) for row in rows]

    def items_changed_since(
        self, since: float | None, *, page: int = 10_000
    ) -> tuple[list[Item], float]:
        source = "items" if since is None else self.spelling.by_update
        start = None if since is None else since - self.change_overlap_seconds
        items: list[Item] = []
        after: str | None = None
        with self.backend.read(short=False) as sql:
            # Before the first page: a row the pages miss commits after it.
            watermark = self.backend.dialect.clock(sql)
            while True:
                clause, params = where(
                    [(f"updated_at >= {self.spelling.since}", start), ("item_id > ?", after)]
                )
                rows = sql.all(
                    f"SELECT {ITEM_COLUMNS} FROM {source}{clause} ORDER BY item_id LIMIT ?",
                    [*params, page],
                )
                items.extend(_item(row) for row in rows)
                if len(rows) < page:
                    return items, watermark
                after = rows[-1][0]

    def list_users(self, *, after: str | None = None, limit: int = 100) -> list[User]:
        clause, params = where([("user_id > ?", after)])
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT {USER_COLUMNS} FROM users{clause} ORDER BY user_id LIMIT ?",
                [*params, limit],
            )
        return [_user(row) for row in rows]

    def count_items(self, *, active: bool | None = None) -> int:
        clause, params = where(self._item_filter(active, None))
        with self.backend.read() as sql:
            row = sql.one(f"SELECT count(*) FROM items{clause}", params)
        return int(row[0]) if row else 0

    def count_users(self) -> int:
        with self.backend.read() as sql:
            row = sql.one("SELECT count(*) FROM users")
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.backend.close()
