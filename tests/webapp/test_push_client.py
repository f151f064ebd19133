"""The app's push side in real headless Chromium: a message delivered through the DevTools
protocol (``ServiceWorker.deliverPushMessage``) is shown; its click opens the item and is
recorded as an event; a message that does not parse is shown and listed; the opt-in prompt
comes only from a click; ``pushsubscriptionchange`` replaces the subscription on the server.

Headless Chromium can neither click a notification nor renew a subscription (its push
service is unreachable here), so those two call the worker's own handlers
(``self.tastebud``) with the real notification and a subscription made with WebCrypto."""

from __future__ import annotations

import json
from typing import Any

from jobs.push_service import Device, b64url

from tastebud.push.messages import Announcement, encode, payload
from tastebud.push.vapid import ensure_keys
from tastebud.schemas import Item
from tastebud.stores.push import PushSubscription
from webapp.harness import AppWorld, eventually, pending, sign_in, wait_until

NOTIFICATIONS = """() => navigator.serviceWorker.ready
  .then(r => r.getNotifications())
  .then(ns => ns.map(n => ({title: n.title, body: n.body, data: n.data})))"""


def deliver(browser: Any, page: Any, world: AppWorld, data: str) -> None:
    """Hand ``data`` to the app's service worker as a push message, over CDP, once its
    version is activated and running."""
    cdp = browser.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.on("ServiceWorker.workerVersionUpdated", lambda event: versions.extend(event["versions"]))
    cdp.send("ServiceWorker.enable")
    scope = f"{world.url}/app/"
    ready: list[str] = []
    for _ in range(200):
        found = [r for r in registrations if r["scopeURL"] == scope and not r["isDeleted"]]
        ids = {r["registrationId"] for r in found}
        latest = {v["registrationId"]: v for v in versions if v["registrationId"] in ids}
        ready = [
            rid
            for rid, v in latest.items()
            if v["status"] == "activated" and v["runningStatus"] == "running"
        ]
        if ready:
            break
        page.wait_for_timeout(50)
    assert ready, (registrations, versions)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": world.url, "registrationId": ready[0], "data": data},
    )
    cdp.detach()


def notifications(page: Any, shown: str) -> list[dict[str, Any]]:
    """The notifications, read once the worker says it has shown ``shown`` (a push_id) or
    an unreadable message ("error"). Not polled: in headless Chromium, reading them while
    one is being shown can drop it (getNotifications syncs with the platform's display)."""
    if shown == "error":
        page.wait_for_selector("#push-errors-box:not([hidden])")
    else:
        page.wait_for_selector(f"body[data-last-push={shown!r}]", state="attached")
    return list(page.evaluate(NOTIFICATIONS))


def test_a_push_is_shown_and_its_click_opens_the_item_and_records_a_click(
    world: AppWorld, browser: Any
) -> None:
    browser.grant_permissions(["notifications"], origin=world.url)
    page = sign_in(browser, world)
    item = Item(item_id="i3", title="Song 3", creator="artist3", categories=["rock"])
    message = payload(Announcement("new", item, "rock"), push_id="p-42")
    deliver(browser, page, world, encode(message))
    [shown] = notifications(page, "p-42")
    assert shown["title"] == "New for you: Song 3"
    assert shown["body"] == "Just added by artist3 in rock."
    assert shown["data"]["item_id"] == "i3" and shown["data"]["push_id"] == "p-42"
    worker = browser.service_workers[0]
    worker.evaluate(
        """async () => {
          let notification;
          for (let tries = 0; !notification && tries < 100; tries += 1) {
            [notification] = await registration.getNotifications();
            if (!notification) await new Promise((resolve) => setTimeout(resolve, 50));
          }
          await self.tastebud.openFromNotification(notification);
          notification.close();
        }"""
    )
    page.wait_for_url(f"{world.url}/app/?item=i3&push=p-42")
    page.wait_for_selector("#item-detail")
    assert page.inner_text("#item-detail .title") == "Song 3"

    def clicks() -> list[dict[str, Any]]:
        return [e for e in world.stored_events() if e["event_type"] == "click"]

    wait_until(lambda: len(clicks()) == 1, 10)
    [click] = clicks()
    assert click["item_id"] == "i3" and click["user_id"] == "u4"
    context = json.loads(click["context"])
    assert context == {"source": "push", "push_id": "p-42", "kind": "new"}


def test_a_push_that_does_not_parse_is_shown_and_listed_and_loses_nothing(
    world: AppWorld, browser: Any
) -> None:
    browser.grant_permissions(["notifications"], origin=world.url)
    page = sign_in(browser, world)
    browser.set_offline(True)
    page.locator("#recommendations .item").first.locator("[data-action=like]").click()
    eventually(page, "TB.summarize().then(s => s.pending === 1)")
    deliver(browser, page, world, "{not json")
    deliver(browser, page, world, json.dumps({"v": 1, "title": "no link"}))
    page.wait_for_function("document.querySelectorAll('#push-errors li').length === 2")
    shown = notifications(page, "error")
    assert shown[0]["title"] == "tastebud"
    assert "could not read" in shown[0]["body"]
    listed = page.inner_text("#push-errors")
    assert "not JSON" in listed and "no body" in listed
    assert pending(page) == 1  # the queued feedback is untouched
    browser.set_offline(False)
    wait_until(lambda: len(world.stored_events()) == 1, 10)
    good = payload(Announcement("trending", Item(item_id="i7", title="Song 7"), None), "p-1")
    deliver(browser, page, world, encode(good))
    assert "Trending now: Song 7" in [n["title"] for n in notifications(page, "p-1")]


def test_the_opt_in_prompt_comes_only_from_a_click(world: AppWorld, browser: Any) -> None:
    ensure_keys(world.stores.database.push)
    page = sign_in(browser, world)
    page.wait_for_selector("#push-on:not([hidden])")
    # Nothing was asked on the way in.
    assert page.evaluate("Notification.permission") == "default"
    page.click("#push-on")  # headless Chromium denies a prompt it cannot show
    page.wait_for_function("document.querySelector('#push-text').textContent.includes('not')")
    assert page.inner_text("#push-text") == "Notifications were not allowed."


def test_a_renewed_subscription_replaces_the_old_one_on_the_server(
    world: AppWorld, browser: Any
) -> None:
    push = world.stores.database.push
    ensure_keys(push)
    old_device = Device("old")
    push.subscribe(
        PushSubscription(
            endpoint="https://push.example.net/send/old",
            user_id="u4",
            p256dh=old_device.p256dh,
            auth=b64url(old_device.auth),
        )
    )
    page = sign_in(browser, world)
    page.evaluate("TB.setMeta('push', {endpoint: 'https://push.example.net/send/old'})")
    browser.service_workers[0].evaluate(
        """async () => {
          const pair = await crypto.subtle.generateKey(
            {name: "ECDH", namedCurve: "P-256"}, true, ["deriveBits"]);
          const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
          const b64 = (bytes) => btoa(String.fromCharCode(...bytes))
            .replace(/[+]/g, "-").replace(/[/]/g, "_").replace(/=+$/, "");
          const fresh = {
            endpoint: "https://push.example.net/send/new",
            toJSON: () => ({
              endpoint: "https://push.example.net/send/new",
              expirationTime: null,
              keys: {p256dh: b64(raw), auth: b64(crypto.getRandomValues(new Uint8Array(16)))},
            }),
          };
          await self.tastebud.renewSubscription(
            {endpoint: "https://push.example.net/send/old"}, fresh);
        }"""
    )
    wait_until(lambda: push.get("https://push.example.net/send/new") is not None, 10)
    assert push.get("https://push.example.net/send/old") is None
    assert [s.user_id for s in push.subscriptions("u4")] == ["u4"]
    assert page.evaluate("TB.getMeta('push').then(p => p.endpoint)") == (
        "https://push.example.net/send/new"
    )
