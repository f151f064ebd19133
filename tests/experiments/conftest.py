"""Experiment stores on every backend (embedded SQLite, a real PostgreSQL), and a small
valid definition to vary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tastebud.experiments.definition import Experiment
from tastebud.experiments.store import ExperimentStore
from tastebud.stores import Database, open_database


def definition(key: str = "blend", **changes: Any) -> dict[str, Any]:
    """A valid two-variant definition as YAML would give it, with ``changes`` on top."""
    data: dict[str, Any] = {
        "key": key,
        "description": "more diversity",
        "owner": "ranking team",
        "variants": [
            {"name": "control", "weight": 0.5},
            {"name": "diverse", "weight": 0.5, "ranking": {"mmr": {"diversity": 0.5}}},
        ],
        "goals": ["click_through"],
        "guardrails": [{"metric": "skip_rate", "max_relative_change": 0.1}],
    }
    data.update(changes)
    return data


def experiment(key: str = "blend", **changes: Any) -> Experiment:
    return Experiment.model_validate(definition(key, **changes))


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
