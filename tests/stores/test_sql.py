"""The dialects of the SQL stores (``stores/sql.py``): one statement, run on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tastebud.stores.errors import StoreDataError
from tastebud.stores.postgres import POSTGRES, PostgresBackend, PostgresDatabase
from tastebud.stores.sql import SqlBackend, loads, where
from tastebud.stores.sqlite import SQLITE, SqliteBackend, SqliteDatabase

TABLE = """
CREATE TABLE IF NOT EXISTS things (
    id {identity},
    name TEXT NOT NULL UNIQUE,
    tags {text_list} NOT NULL,
    extra {json},
    seen {timestamp},
    weight {real}
);
"""


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlBackend]:
    if request.param == "sqlite":
        opened: SqlBackend = SqliteBackend(SqliteDatabase(tmp_path / "things.db"))
    else:
        database = PostgresDatabase(request.getfixturevalue("postgres_url"))
        opened = PostgresBackend(database, owned=True)
    opened.apply_schema("things", opened.dialect.ddl(TABLE))
    yield opened
    opened.close()


def test_placeholders_become_pyformat_and_a_literal_percent_survives() -> None:
    assert SQLITE.sql("SELECT ? LIKE '%a'") == "SELECT ? LIKE '%a'"
    assert POSTGRES.sql("SELECT ? LIKE '%a'") == "SELECT %s LIKE '%%a'"


def test_type_words_keep_the_columns_deployed_databases_have() -> None:
    assert "id INTEGER PRIMARY KEY AUTOINCREMENT" in SQLITE.ddl(TABLE)
    assert "tags TEXT NOT NULL" in SQLITE.ddl(TABLE)
    assert "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" in POSTGRES.ddl(TABLE)
    assert "tags TEXT[] NOT NULL" in POSTGRES.ddl(TABLE)
    assert "extra JSONB" in POSTGRES.ddl(TABLE)


def test_where_keeps_only_the_conditions_given() -> None:
    assert where([("a = ?", None), ("b > ?", None)]) == ("", [])
    assert where([("a = ?", 1), ("b > ?", None), ("c < ?", "x")]) == (
        " WHERE a = ? AND c < ?",
        [1, "x"],
    )


def test_one_statement_round_trips_values_on_both_backends(backend: SqlBackend) -> None:
    dialect = backend.dialect
    seen = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    with backend.write() as sql:
        row = sql.one(
            "INSERT INTO things (name, tags, extra, seen, weight) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING RETURNING id",
            (
                "a",
                dialect.text_list(["x", "ü"]),
                dialect.json({"b": [1, 2]}),
                dialect.timestamp(seen),
                0.5,
            ),
        )
    assert row is not None and int(row[0]) >= 1
    with backend.read() as sql:
        (tags, extra, at, weight) = sql.one(  # type: ignore[misc]
            "SELECT tags, extra, seen, weight FROM things WHERE name = ?", ("a",)
        )
    assert (loads(tags), loads(extra), weight) == (["x", "ü"], {"b": [1, 2]}, 0.5)
    at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    assert at == seen


def test_any_of_matches_more_values_than_one_in_list_holds(backend: SqlBackend) -> None:
    names = [f"n{index}" for index in range(1_234)]
    with backend.write() as sql:
        for name in names:
            sql.execute(
                "INSERT INTO things (name, tags) VALUES (?, ?)",
                (name, backend.dialect.text_list([])),
            )
    wanted = [*names[::2], "missing"]
    found: list[str] = []
    with backend.read() as sql:
        for condition, params in backend.dialect.any_of("name", wanted):
            found += [
                name for (name,) in sql.all(f"SELECT name FROM things WHERE {condition}", params)
            ]
    assert sorted(found) == sorted(names[::2])


def test_a_broken_constraint_is_a_data_error_on_both_backends(backend: SqlBackend) -> None:
    insert = "INSERT INTO things (name, tags) VALUES (?, ?)"
    with backend.write() as sql:
        sql.execute(insert, ("twice", backend.dialect.text_list([])))
    with pytest.raises(StoreDataError), backend.write() as sql:
        sql.execute(insert, ("twice", backend.dialect.text_list([])))
    with backend.read() as sql:
        assert sql.one("SELECT count(*) FROM things") == (1,)


def test_json_text_is_written_as_before() -> None:
    """SQLite rows keep the text earlier versions wrote (sorted keys, dates as text)."""
    value = {"b": 1, "a": datetime(2025, 1, 1, tzinfo=UTC)}
    assert SQLITE.json(value) == json.dumps(value, sort_keys=True, default=str)
    assert SQLITE.json(None) is None and POSTGRES.json(None) is None
