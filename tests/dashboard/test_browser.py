"""The dashboard in a real browser: ``tastebud dashboard``'s Streamlit process reading the
served world over HTTP, driven by Debian's chromium through Playwright. Every page renders
without a Streamlit exception; moving the explorer's diversity slider changes the list; a
screenshot of each page goes to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dashboard.conftest import ServedWorld

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Each page, and what is on it once its data has been drawn.
PAGES = {
    "explorer": ("?user={user}", "[data-testid=stTable] tbody tr"),
    "operations": ("operations", "[data-testid=stDataFrame]"),
    "models": ("models?version={version}", "[data-testid=stDataFrame] >> nth=1"),  # trials
    "impact": ("impact", "[data-testid=stMetric]"),
}


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
