"""Takes the screenshots in docs/app.md (the feed online, and offline with feedback waiting)
in Debian's chromium, against a small served world. Run from the repository root:
`.venv/bin/python scripts/app-screenshots.py`."""

import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402
from webapp.harness import give_feedback, launch, open_world, sign_in  # noqa: E402

OUT = ROOT / "docs" / "images"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp())
    with open_world(scratch / "home") as world, sync_playwright() as driver:
        context = launch(driver, scratch / "profile")
        page = sign_in(context, world)
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT / "app-feed-online.png"))
        context.set_offline(True)
        page.goto(f"{world.url}/app/")
        page.wait_for_selector("body[data-ready=true]")
        give_feedback(page, random.Random(5), 3)
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "app-feed-offline.png"))
        context.close()
    print(f"wrote {OUT}/app-feed-online.png and app-feed-offline.png")


if __name__ == "__main__":
    main()
