"""The dashboard's tests run against a real server on a generated world: ``tastebud
quickstart`` on a small world (80 users, 90 items, 5 days: ingested, trained, registered as
production, the jobs run), served by a live uvicorn on a loopback port, with a read and an
admin key, and a second model version trained with a short AutoML search (registered, not
promoted). One world for the whole directory: building it takes about twenty seconds."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.gateway_testing import LiveServer, free_port
from typer.testing import CliRunner
from webapp.harness import CHROMIUM, FLAGS

from tastebud.cli.main import app
from tastebud.config import Settings, load_settings
from tastebud.dashboard.launch import start
from tastebud.stores import Stores, open_stores

REQUIRE = os.environ.get("TASTEBUD_REQUIRE_SERVICES") == "1"
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
    app: Any  # the live server's app (its stores and exposure log, for what a test reads)

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
                yield ServedWorld(
                    server.url, home, settings, stores, read[1], admin[1], searched,
                    server.server.config.app,
                )  # fmt: skip
        finally:
            stores.close()
    finally:
        if before is None:
            os.environ.pop("TASTEBUD_HOME", None)
        else:
            os.environ["TASTEBUD_HOME"] = before


# An experiment on the served world: defined and started over the API, lists served to the
# users with events, plays and clicks posted on them; and a draft that never served.
KEY = "blend"
EMPTY = "untouched"


def _definition(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "description": "popular candidates only against the hybrid",
        "variants": [
            {"name": "control", "weight": 0.5},
            {"name": "popular", "weight": 0.5, "ranking": {"candidates": {"cf": 0, "content": 0}}},
        ],
        "goals": ["plays_per_user", "click_through"],
        "guardrails": [{"metric": "empty_lists", "max_relative_change": 0.5, "min_users": 5}],
        "min_sample_size": 30,
    }


@dataclass
class Running:
    served: ServedWorld
    lists: dict[str, str]  # list id -> variant
    events: int


def http(served: ServedWorld, key: str) -> httpx.Client:
    return httpx.Client(base_url=served.url, headers={"X-API-Key": key}, timeout=30)


def _serve_and_play(served: ServedWorld, read: httpx.Client) -> tuple[dict[str, str], int]:
    """A list for every user with events, and plays (and some clicks) on its items, each
    event naming its list: the experiment's exposures and outcomes."""
    users = sorted(set(served.stores.events.read_arrow().column("user_id").to_pylist()))
    deadline = time.monotonic() + 15  # the server's watcher sees the start within a poll
    while _served_variant(read, users[0]) != KEY:
        assert time.monotonic() < deadline, "the started experiment never reached serving"
        time.sleep(0.2)
    lists, events = {}, []
    for n, user in enumerate(users):
        body = read.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()
        served_at = time.time()  # events after their list, and in the past once posted
        lists[body["list_id"]] = body["variant"]
        plays = 1 + n % 3 + (1 if body["variant"] == "popular" else 0)
        for m, item in enumerate(body["items"][:plays]):
            kind = "click" if m == 0 else "play"
            events.append(
                {
                    "event_id": f"xp-{user}-{m}", "user_id": user, "item_id": item["item_id"],
                    "event_type": kind, **({"value": 30.0} if kind == "play" else {}),
                    "timestamp": served_at + m / 1000, "context": {"list_id": body["list_id"]},
                }
            )  # fmt: skip
    with http(served, served.key(["ingest"])[1]) as ingest:
        for start in range(0, len(events), 200):
            answer = ingest.post("/v1/events", json={"events": events[start : start + 200]})
            assert answer.status_code in (200, 202), answer.text
    return lists, len(events)


def _served_variant(read: httpx.Client, user: str) -> str | None:
    return read.get(f"/v1/users/{user}/recommendations").json()["experiment"]  # type: ignore[no-any-return]


# One module's (test_experiments_page.py): stopped when it ends, and served lists back to
# no experiment before the next module, whose lists must not carry a variant.
@pytest.fixture(scope="module")
def running(served: ServedWorld) -> Iterator[Running]:
    with http(served, served.admin_key) as admin, http(served, served.read_key) as read:
        for key in (KEY, EMPTY):
            put = admin.put(f"/v1/experiments/{key}", json=_definition(key))
            assert put.status_code in (200, 201), put.text
        assert admin.post(f"/v1/experiments/{KEY}/start", json={}).status_code == 200
        lists, events = _serve_and_play(served, read)
        yield Running(served, lists, events)
        assert admin.post(f"/v1/experiments/{KEY}/stop", json={"note": "over"}).status_code == 200
        deadline = time.monotonic() + 15
        while _served_variant(read, served.active_user()) is not None:
            assert time.monotonic() < deadline, "the stopped experiment still serves"
            time.sleep(0.2)


# The dashboard's own process reading the served world, and a chromium page (test_browser.py
# and the experiments page's browser test).
@pytest.fixture
def dashboard(served: ServedWorld) -> Iterator[str]:
    port = free_port()
    process = start("127.0.0.1", port, served.url, served.read_key)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the dashboard process exited"
            assert time.monotonic() < deadline, "the dashboard did not start within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        message = f"{CHROMIUM} is missing: `make chromium` (scripts/install-chromium.sh)"
        if REQUIRE:
            pytest.fail(f"TASTEBUD_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        # Tall: Streamlit scrolls inside its own container, so a screenshot holds the viewport.
        opened = browser.new_page(viewport={"width": 1400, "height": 1800})
        opened.set_default_timeout(45_000)
        yield opened
        browser.close()
