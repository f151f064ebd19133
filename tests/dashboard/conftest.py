"""The dashboard's tests run against a real server on a generated world: ``tastebud
quickstart`` on a small world (80 users, 90 items, 5 days: ingested, trained, registered as
production, the jobs run), served by a live uvicorn on a loopback port, with a read and an
admin key, and a second model version trained with a short AutoML search (registered, not
promoted). One world for the whole directory: building it takes about twenty seconds."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api.gateway_testing import LiveServer
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import Settings, load_settings
from tastebud.stores import Stores, open_stores

SMALL = ["--users", "80", "--items", "90", "--days", "5", "--no-serve"]


@pytest.fixture(autouse=True)
def _main_module_restored() -> Iterator[None]:
    """Streamlit's script runner installs the page script as ``sys.modules["__main__"]``
    and leaves it there; a later test that starts a process with multiprocessing's spawn
    would then re-run that script in the child (and fail). Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@dataclass
class ServedWorld:
    url: str
    home: Path
    settings: Settings
    stores: Stores
    read_key: str
    admin_key: str
    searched: str  # a version trained with an AutoML search, registered beside production

    def active_user(self) -> str:
        """A user with events (not every user of a generated world has some)."""
        return str(self.stores.events.read_arrow().column("user_id")[0])

    def key(self, scopes: list[str]) -> tuple[str, str]:
        """A new key: (its id, the key)."""
        created = self.stores.database.gateway.keys.create(scopes, "dashboard test")
        assert created is not None
        return created[0].key_id, created[1]


# Package scope: TASTEBUD_HOME points at this world only while tests/dashboard runs.
@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedWorld]:
    home = tmp_path_factory.mktemp("dashboard-home")
    before = os.environ.get("TASTEBUD_HOME")
    os.environ["TASTEBUD_HOME"] = str(home)
    try:
        result = CliRunner().invoke(app, ["quickstart", *SMALL])
        assert result.exit_code == 0, result.output
        trained = CliRunner().invoke(app, ["train", "--auto", "--budget", "5s"])
        assert trained.exit_code == 0, trained.output
        searched = trained.output.strip().splitlines()[-1]
        settings = load_settings(gateway={"key_cache_seconds": 0.0})
        stores = open_stores(settings)
        try:
            read = stores.database.gateway.keys.create(["read"], "dashboard")
            admin = stores.database.gateway.keys.create(["admin"], "dashboard admin")
            assert read is not None and admin is not None
            with LiveServer(settings) as server:
                yield ServedWorld(server.url, home, settings, stores, read[1], admin[1], searched)
        finally:
            stores.close()
    finally:
        if before is None:
            os.environ.pop("TASTEBUD_HOME", None)
        else:
            os.environ["TASTEBUD_HOME"] = before
