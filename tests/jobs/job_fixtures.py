"""Job fixtures, imported by the job tests (a conftest.py would clash with other folders').
registry of test jobs, and stores with a memory online store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tastebud.config import Settings, load_settings
from tastebud.jobs import RunHistory, open_run_history
from tastebud.stores import Stores, open_stores

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["embedded", "postgres"])
def backend_settings(request: pytest.FixtureRequest, home: Path) -> Settings:
    """Settings whose database is the embedded default or a private PostgreSQL schema."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return load_settings(database_url=url, online_url="memory://")
    return load_settings(online_url="memory://")


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(online_url="memory://")


@pytest.fixture
def history(settings: Settings) -> Iterator[RunHistory]:
    runs = open_run_history(settings)
    yield runs
    runs.close()


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    opened = open_stores(settings)
    yield opened
    opened.close()
