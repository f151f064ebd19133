"""The dashboard in a real browser: ``tastebud dashboard``'s Streamlit process reading the
served world over HTTP, driven by Debian's chromium through Playwright. Every page renders
without a Streamlit exception; moving the explorer's diversity slider changes the list; a
screenshot of each page goes to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.gateway_testing import free_port
from webapp.harness import CHROMIUM, FLAGS

from dashboard.conftest import ServedWorld
from tastebud.dashboard.launch import start

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REQUIRE = os.environ.get("TASTEBUD_REQUIRE_SERVICES") == "1"
# Each page, and what is on it once its data has been drawn.
PAGES = {
    "explorer": ("?user={user}", "[data-testid=stTable] tbody tr"),
    "operations": ("operations", "[data-testid=stDataFrame]"),
    "models": ("models?version={version}", "[data-testid=stDataFrame] >> nth=1"),  # trials
    "impact": ("impact", "[data-testid=stMetric]"),
}


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


def _rendered(page: Any, ready: str) -> None:
    """Wait for the page's data, then for Streamlit to finish its run."""
    page.wait_for_selector(ready)
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget]')"
        " || !document.querySelector('[data-testid=stStatusWidget]').innerText.includes('Running')"
    )
    assert page.locator("[data-testid=stException]").count() == 0
    assert page.locator("[data-testid=stAlertContentError]").count() == 0


def _list(page: Any) -> list[str]:
    return [
        text.strip() for text in page.locator("[data-testid=stTable] tbody tr").all_inner_texts()
    ]


def test_every_page_renders_and_the_diversity_slider_changes_the_list(
    dashboard: str, page: Any, served: ServedWorld
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    user = served.active_user()
    for name, (path, ready) in PAGES.items():
        page.goto(f"{dashboard}/{path.format(user=user, version=served.searched)}")
        _rendered(page, ready)
        page.wait_for_timeout(500)  # charts draw after their data arrives
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.goto(f"{dashboard}/?user={user}")
    _rendered(page, PAGES["explorer"][1])
    before = _list(page)
    assert len(before) == 10
    slider = page.get_by_role("slider", name="Diversity")  # an <input type=range>
    slider.focus()
    slider.press("End")  # diversity 1.0: as spread out as the list goes
    page.wait_for_function(
        "before => [...document.querySelectorAll('[data-testid=stTable] tbody tr')]"
        ".map(row => row.innerText.trim()).join('|') !== before",
        arg="|".join(before),
    )
    _rendered(page, PAGES["explorer"][1])
    assert float(slider.input_value()) == 1.0
    after = _list(page)
    assert len(after) == 10 and after != before
    caption = page.locator("[data-testid=stCaptionContainer]").filter(has_text="overrides")
    assert "'diversity': 1.0" in caption.inner_text()
