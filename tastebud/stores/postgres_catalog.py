"""The PostgreSQL catalog: items (categories as text[] with a GIN index) and users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from tastebud.schemas import Item, User
from tastebud.stores.base import CatalogStore
from tastebud.stores.postgres import PostgresDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    title TEXT,
    creator TEXT,
    categories TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ,
    attributes JSONB NOT NULL DEFAULT '{}',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS items_categories ON items USING GIN (categories);
CREATE INDEX IF NOT EXISTS items_updated ON items (updated_at);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ,
    attributes JSONB NOT NULL DEFAULT '{}',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""

ITEM_COLUMNS = "item_id, title, creator, categories, created_at, attributes, active"
USER_COLUMNS = "user_id, created_at, attributes"


def _item(row: tuple[Any, ...]) -> Item:
    item_id, title, creator, categories, created_at, attributes, active = row
    return Item.model_construct(
        item_id=item_id,
        title=title,
        creator=creator,
        categories=list(categories),
        created_at=created_at,
        attributes=attributes,
        active=active,
    )


def _user(row: tuple[Any, ...]) -> User:
    user_id, created_at, attributes = row
    return User.model_construct(user_id=user_id, created_at=created_at, attributes=attributes)


class PostgresCatalogStore(CatalogStore):
    def __init__(self, database: PostgresDatabase, *, owns_database: bool = False) -> None:
        self.database = database
        self._owns_database = owns_database
        database.apply_schema("catalog", SCHEMA)

    def upsert_items(self, items: Sequence[Item]) -> int:
        rows = [
            (
                item.item_id,
                item.title,
                item.creator,
                list(item.categories),
                item.created_at,
                Jsonb(item.attributes),
                item.active,
            )
            for item in items
        ]
        with self.database.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO items ({ITEM_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (item_id) DO UPDATE SET title = excluded.title,"
                " creator = excluded.creator, categories = excluded.categories,"
                " created_at = excluded.created_at, attributes = excluded.attributes,"
                " active = excluded.active, updated_at = now()",
                rows,
            )
        return len(rows)

    def upsert_users(self, users: Sequence[User]) -> int:
        rows = [(user.user_id, user.created_at, Jsonb(user.attributes)) for user in users]
        with self.database.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO users ({USER_COLUMNS}) VALUES (%s, %s, %s)"
                " ON CONFLICT (user_id) DO UPDATE SET created_at = excluded.created_at,"
                " attributes = excluded.attributes, updated_at = now()",
                rows,
            )
        return len(rows)

    def get_items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        with self.database.transaction(read_only=True) as connection:
            rows = connection.execute(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE item_id = ANY(%s)", (list(item_ids),)
            ).fetchall()
        return {row[0]: _item(row) for row in rows}

    def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        with self.database.transaction(read_only=True) as connection:
            rows = connection.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE user_id = ANY(%s)", (list(user_ids),)
            ).fetchall()
        return {row[0]: _user(row) for row in rows}

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
            clauses.append("item_id > %s")
            params.append(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {ITEM_COLUMNS} FROM items{where} ORDER BY item_id LIMIT %s",  # type: ignore[arg-type]
                [*params, limit],
            ).fetchall()
        return [_item(row) for row in rows]

    def items_changed_since(
        self, since: float | None, *, page: int = 10_000
    ) -> tuple[list[Item], float]:
        items: list[Item] = []
        after: str | None = None
        with self.database.transaction() as connection:
            # now() is this transaction's start, before every page's snapshot: a row the pages
            # miss commits after it.
            (watermark,) = connection.execute(  # type: ignore[misc]
                "SELECT extract(epoch FROM now())::float8"
            ).fetchone()
            while True:
                clauses: list[str] = []
                params: list[Any] = []
                if since is not None:
                    clauses.append("updated_at >= to_timestamp(%s)")
                    params.append(since - self.change_overlap_seconds)
                if after is not None:
                    clauses.append("item_id > %s")
                    params.append(after)
                where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
                rows = connection.execute(
                    f"SELECT {ITEM_COLUMNS} FROM items{where} ORDER BY item_id LIMIT %s",  # type: ignore[arg-type]
                    [*params, page],
                ).fetchall()
                items.extend(_item(row) for row in rows)
                if len(rows) < page:
                    return items, float(watermark)
                after = rows[-1][0]

    def list_users(self, *, after: str | None = None, limit: int = 100) -> list[User]:
        where, params = (" WHERE user_id > %s", [after]) if after is not None else ("", [])
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {USER_COLUMNS} FROM users{where} ORDER BY user_id LIMIT %s",  # type: ignore[arg-type]
                [*params, limit],
            ).fetchall()
        return [_user(row) for row in rows]

    def count_items(self, *, active: bool | None = None) -> int:
        clauses, params = _item_filter(active, None)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.database.transaction(read_only=True) as connection:
            (count,) = connection.execute(f"SELECT count(*) FROM items{where}", params).fetchone()  # type: ignore[arg-type,misc]
        return int(count)

    def count_users(self) -> int:
        with self.database.transaction(read_only=True) as connection:
            (count,) = connection.execute("SELECT count(*) FROM users").fetchone()  # type: ignore[misc]
        return int(count)

    def close(self) -> None:
        if self._owns_database:
            self.database.close()


def _item_filter(active: bool | None, category: str | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if active is not None:
        clauses.append("active = %s")
        params.append(active)
    if category is not None:
        clauses.append("categories @> ARRAY[%s]::text[]")
        params.append(category)
    return clauses, params
