"""A PostgreSQL catalog orders ids by code point whatever the database's collation: new
tables are made so, and one made before (under a linguistic collation, here ICU's en-US as
the official image's en_US.utf8 would give) is moved over when the store opens."""

from __future__ import annotations

import psycopg
import pytest
from stores.test_catalog_store_contract import MIXED_IDS

from tastebud.stores import open_database

pytestmark = pytest.mark.postgres

EARLIER_USERS = """
CREATE TABLE users (
    user_id TEXT COLLATE "en-US-x-icu" PRIMARY KEY,
    created_at TIMESTAMPTZ,
    attributes JSONB NOT NULL DEFAULT '{}',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def _collations(connection: psycopg.Connection) -> dict[str, str | None]:
    rows = connection.execute(
        "SELECT table_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_name IN ('item_id', 'user_id')"
        " AND table_name IN ('items', 'users')"
    ).fetchall()
    return {table: collation for table, collation in rows}


def test_an_earlier_linguistic_catalog_pages_in_code_point_order(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        found = "SELECT 1 FROM pg_collation WHERE collname = 'en-US-x-icu'"
        if connection.execute(found).fetchone() is None:
            pytest.skip("this PostgreSQL is built without ICU collations")
        connection.execute(EARLIER_USERS)
        for user_id in MIXED_IDS:
            connection.execute("INSERT INTO users (user_id) VALUES (%s)", (user_id,))
        before = [row[0] for row in connection.execute("SELECT user_id FROM users ORDER BY 1")]
        assert before != sorted(MIXED_IDS)  # what the pages followed before
    with open_database(postgres_url) as database:
        listed = [user.user_id for user in database.catalog.list_users(limit=100)]
        assert listed == sorted(MIXED_IDS)
        assert database.catalog.count_users() == len(MIXED_IDS)  # the rows stayed
    with psycopg.connect(postgres_url) as connection:
        assert _collations(connection) == {"items": "C", "users": "C"}
    with open_database(postgres_url) as database:  # opened again: nothing left to move
        assert [u.user_id for u in database.catalog.list_users(limit=3)] == sorted(MIXED_IDS)[:3]
