"""Bad input in the app, each handled visibly with nothing else lost: a corrupt IndexedDB
entry, an event the server rejects, and a revoked key (the queue waits for a new one)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from webapp.harness import (
    AppWorld,
    eventually,
    give_feedback,
    open_world,
    pending,
    queued_ids,
    sign_in,
    wait_until,
)

CORRUPT = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("tastebud");
  open.onsuccess = () => {
    const tx = open.result.transaction("queue", "readwrite");
    const queue = tx.objectStore("queue");
    queue.add("garbage from an old version");
    queue.add({v: 1, queued_at: Date.now(), event: {event_id: 5, user_id: "u4"}});
    tx.oncomplete = () => resolve(true);
    tx.onerror = () => reject(tx.error);
  };
  open.onerror = () => reject(open.error);
})"""


def test_corrupt_queue_entries_are_set_aside_and_the_rest_is_sent(
    world: AppWorld, browser: Any
) -> None:
    page = sign_in(browser, world)
    browser.set_offline(True)
    give_feedback(page, random.Random(1), 3)
    good = queued_ids(page)
    page.evaluate(CORRUPT)
    assert pending(page) == 5
    browser.set_offline(False)
    wait_until(lambda: set(good) <= set(world.stored_counts()), 10)
    wait_until(lambda: pending(page) == 0, 5)
    assert sorted(world.stored_counts()) == sorted(good)
    page.wait_for_selector("#rejected-box:not([hidden])")
    listed = page.locator("#rejected li").all_inner_texts()
    assert len(listed) == 2
    assert all("damaged stored entry" in line and "corrupt_entry" in line for line in listed)
    page.click("#clear-rejected")
    page.wait_for_selector("#rejected-box[hidden]", state="attached")


def test_an_event_the_server_rejects_is_listed_and_not_retried(
    world: AppWorld, browser: Any
) -> None:
    page = sign_in(browser, world)
    browser.set_offline(True)
    give_feedback(page, random.Random(2), 2)
    page.evaluate(
        "TB.enqueue(TB.newEvent('u4', 'i5', 'teleport', null, {}))"
        ".then(() => TB.enqueue(TB.newEvent('u4', 'i6', 'like', null, {})))"
    )
    good = [i for i in queued_ids(page)]
    assert len(good) == 4
    browser.set_offline(False)
    page.wait_for_selector("#rejected-box:not([hidden])")
    wait_until(lambda: pending(page) == 0, 10)
    stored = world.stored_counts()
    assert len(stored) == 3 and set(stored) < set(good)
    [line] = page.locator("#rejected li").all_inner_texts()
    assert line.startswith("teleport on i5: unknown_event_type")
    time.sleep(1)
    assert len(world.stored_counts()) == 3 and pending(page) == 0


def test_a_revoked_key_keeps_the_queue_until_a_new_key(world: AppWorld, browser: Any) -> None:
    page = sign_in(browser, world)
    assert world.stores.database.gateway.keys.revoke(world.key_id)
    give_feedback(page, random.Random(3), 4)
    page.wait_for_selector("#refused:not([hidden])")
    page.wait_for_function(
        "document.querySelector('#refused-text').textContent.includes('4 events are kept')"
    )
    text = page.inner_text("#refused-text")
    assert "invalid_api_key" in text
    assert pending(page) == 4
    page.wait_for_timeout(1500)  # timers and retries come and go: still nothing sent
    assert world.stored_counts() == {} and pending(page) == 4
    page.fill("#new-key", world.new_key())
    page.click("#new-key-form button[type=submit]")
    wait_until(lambda: len(world.stored_counts()) == 4, 10)
    page.wait_for_selector("#refused", state="hidden")
    wait_until(lambda: pending(page) == 0, 5)


def test_queue_limits_drop_the_oldest_first_and_count_them(home: Path, browser: Any) -> None:
    with open_world(home, app={"queue_max_events": 5, "queue_max_age_hours": 0.001}) as world:
        page = sign_in(browser, world)
        browser.set_offline(True)
        give_feedback(page, random.Random(4), 5)
        first = queued_ids(page)
        give_feedback(page, random.Random(5), 3)
        kept = queued_ids(page)
        assert len(kept) == 5 and kept[:2] == first[3:]  # the 3 oldest went
        stats = page.evaluate("TB.summarize().then(s => s.stats)")
        assert stats["dropped_full"] == 3
        time.sleep(4)  # past the age limit (3.6 s)
        browser.set_offline(False)
        eventually(page, "TB.summarize().then(s => s.stats.dropped_old === 5)")
        assert pending(page) == 0 and world.stored_counts() == {}
        page.wait_for_function(
            "document.querySelector('#queue-text').textContent.includes('8 dropped')"
        )
