"""Fixtures for the app's browser tests: a live tastebud server over a small served world
(catalog with titles, a production model, a published trending list) and Debian's chromium
driven by Playwright, with a persistent profile (push needs one: incognito has none)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from webapp.harness import CHROMIUM, AppWorld, open_world

REQUIRE = os.environ.get("TASTEBUD_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        message = f"{CHROMIUM} is missing: `make chromium` (scripts/install-chromium.sh)"
        if REQUIRE:
            pytest.fail(f"TASTEBUD_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture
def world(home: Path) -> Iterator[AppWorld]:
    with open_world(home) as opened:
        yield opened


@pytest.fixture
def browser(playwright_driver: object, tmp_path: Path) -> Iterator[object]:
    from webapp.harness import launch

    profile = tmp_path / "chromium-profile"
    context = launch(playwright_driver, profile)
    yield context
    context.close()
    shutil.rmtree(profile, ignore_errors=True)
