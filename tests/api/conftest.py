"""Fixtures for the HTTP API: the app over each backend with one API key per scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.gateway_testing import Api, TestClient, gateway_settings, make_keys
from tastebud.api.app import create_app
from tastebud.stores import Database, open_database


@pytest.fixture(params=["embedded", "postgres"])
def database_url(request: pytest.FixtureRequest, home: Path) -> str | None:
    return None if request.param == "embedded" else request.getfixturevalue("postgres_url")


@pytest.fixture
def api_factory(home: Path) -> Iterator[Callable[..., Api]]:
    opened: list[tuple[TestClient, Database]] = []

    def make(database_url: str | None = None, **gateway: Any) -> Api:
        settings = gateway_settings(home, database_url, **gateway)
        database = open_database(settings.resolved_database_url)
        keys = make_keys(database)
        client = TestClient(create_app(settings), raise_server_exceptions=True)
        client.__enter__()
        opened.append((client, database))
        return Api(client, settings, database, keys)

    yield make
    for client, database in opened:
        client.__exit__(None, None, None)
        database.close()


@pytest.fixture
def api(api_factory: Callable[..., Api], database_url: str | None) -> Api:
    """The app over each backend (embedded, PostgreSQL)."""
    return api_factory(database_url)


@pytest.fixture
def embedded_api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()
