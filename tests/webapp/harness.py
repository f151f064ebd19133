"""The browser tests' harness: the served world, chromium and the app's sign-in."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.gateway_testing import LiveServer
from ranking.serving_world import build_world

from tastebud.config import Settings
from tastebud.jobs.outputs import publish_lists
from tastebud.stores import Stores

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USER = "u4"
TRENDING = ["i7", "i10", "i13", "new1"]


@dataclass
class AppWorld:
    url: str
    settings: Settings
    stores: Stores
    key: str  # ingest + read
    key_id: str

    def stored_counts(self) -> Counter[str]:
        """How many times each event_id is in the event store."""
        table = self.stores.events.read_arrow()
        return Counter(table.column("event_id").to_pylist())

    def stored_events(self) -> list[dict[str, Any]]:
        return self.stores.events.read_arrow().to_pylist()

    def new_key(self) -> str:
        created = self.stores.database.gateway.keys.create(["ingest", "read"], "app test")
        assert created is not None
        return created[1]


@contextmanager
def open_world(home: Path, **settings: Any) -> Iterator[AppWorld]:
    """The serving world of the ranking tests (titles, creators, an ALS model in production)
    with a published trending list, behind a live server on a loopback port."""
    options: dict[str, Any] = {
        "online_url": f"sqlite://{home / 'online.db'}",
        "gateway": {"key_cache_seconds": 0.0, "rate_limit_per_second": 10_000.0},
        **settings,
    }
    world = build_world(home, **options)
    stores = world.stores
    try:
        entries = [
            {"item_id": item, "score": 9.0 - n, "lift": 3.0, "rank": n + 1}
            for n, item in enumerate(TRENDING)
        ]
        publish_lists(
            None,
            stores.online,
            "trending",
            {"*": entries, "rock": entries[:2]},
            as_of=datetime.now(UTC),
            version="test",
        )
        created = stores.database.gateway.keys.create(["ingest", "read"], "app")
        assert created is not None
        with LiveServer(world.settings) as server:
            yield AppWorld(server.url, world.settings, stores, created[1], created[0].key_id)
    finally:
        stores.close()


def launch(driver: Any, profile: Path) -> Any:
    """Debian's chromium with a persistent profile (service workers, push, notifications)."""
    context = driver.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=FLAGS,
        viewport={"width": 480, "height": 900},
        service_workers="allow",
    )
    context.set_default_timeout(20_000)
    return context


def sign_in(context: Any, world: AppWorld, user: str = USER, key: str | None = None) -> Any:
    """Open the app, sign in, and wait until the service worker controls the page."""
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{world.url}/app/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#user-id", user)
    page.fill("#api-key", key or world.key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#feed:not([hidden])")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.wait_for_selector("#recommendations .item")
    return page


def eventually(page: Any, expression: str, seconds: float = 20.0, every_ms: int = 25) -> Any:
    """Poll an async JS ``expression`` in the page until it gives a truthy value; return it.
    (``page.wait_for_function`` does not wait for a promise: a promise is truthy at once.)"""
    return page.evaluate(
        f"""async () => {{
          const deadline = Date.now() + {int(seconds * 1000)};
          for (;;) {{
            const value = await ({expression});
            if (value) return value;
            if (Date.now() > deadline) throw new Error({json.dumps("timed out: " + expression)});
            await new Promise((resolve) => setTimeout(resolve, {every_ms}));
          }}
        }}"""
    )


def pending(page: Any) -> int:
    return int(page.evaluate("TB.summarize().then(s => s.pending)"))


def wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> float:
    """Seconds it took ``condition`` to hold; raises AssertionError after ``seconds``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(step)
    return time.monotonic() - started


# The event ids in the device's queue, read from IndexedDB as the page sees it.
QUEUED_IDS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("tastebud");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const request = open.result.transaction("queue").objectStore("queue").getAll();
    request.onsuccess = () => resolve(request.result.map(e => e && e.event && e.event.event_id));
    request.onerror = () => reject(request.error);
  };
})"""


def queued_ids(page: Any) -> list[str]:
    return list(page.evaluate(QUEUED_IDS))


def give_feedback(page: Any, rng: Any, count: int, list_id: str = "recommendations") -> None:
    """``count`` mixed events (play with seconds played, skip, like, dislike) on the list's
    items, each waited for until it is in the device's queue."""
    items = page.locator(f"#{list_id} .item")
    total = items.count()
    expected = int(page.evaluate("TB.summarize().then(s => s.stats.queued || 0)"))
    for _ in range(count):
        item = items.nth(rng.randrange(total))
        action = rng.choice(["play", "skip", "like", "dislike"])
        # A real click event on the button, without Playwright's actionability checks (scroll,
        # stable box, hit test: ~0.1 s a click, 400 clicks here).
        item.locator(f"[data-action={action}]").dispatch_event("click")
        if action == "play":  # the play event goes when it stops, with the seconds played
            page.wait_for_timeout(rng.randrange(20, 120))
            item.locator("[data-action=play]").dispatch_event("click")
        expected += 1
        eventually(page, f"TB.summarize().then(s => s.stats.queued >= {expected})")


def duplicates_counted() -> float:
    """Events the gateway of this process answered ``duplicate`` (a resend) so far."""
    from tastebud.gateway.metrics import EVENTS

    for metric in EVENTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") == "duplicate":
                return float(sample.value)
    return 0.0
