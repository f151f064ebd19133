"""Experiment stores on every backend (embedded SQLite, a real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tastebud.experiments.store import ExperimentStore
from tastebud.stores import Database, open_database


@pytest.fixture(params=["embedded", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return f"embedded://{tmp_path / 'db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def open_store(database_url: str) -> Iterator[Callable[[], ExperimentStore]]:
    """Opens stores on one database (as separate workers would); all closed afterwards."""
    opened: list[tuple[ExperimentStore, Database]] = []

    def make() -> ExperimentStore:
        database = open_database(database_url)
        store = ExperimentStore(database.sql_backend("experiments"))
        opened.append((store, database))
        return store

    yield make
    for store, database in opened:
        store.close()
        database.close()


@pytest.fixture
def store(open_store: Callable[[], ExperimentStore]) -> ExperimentStore:
    return open_store()
