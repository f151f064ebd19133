"""``push``: every 15 minutes, tell listeners who opted in about a new item that matches
their taste or what is trending now (``tastebud.push.messages``), by web push.

Per user: the frequency cap first (``push.max_per_day``, ``push.min_gap_hours``), then each
device's quiet hours in its own time zone, then one message to every awake device. Each
subscription is read again just before its message goes out, so an opt-out made while the
job runs is honoured at once; a 404 or 410 from the push service prunes the subscription.
A message counts against the cap once any device got it. The job evaluates at the end of
its interval (``context.end``), so a run over a given moment decides the same way again.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions.affinity import KEY as AFFINITY_KEY
from tastebud.jobs.outputs import lookup_items
from tastebud.observability import get_logger
from tastebud.push import messages, policy
from tastebud.push.sender import PushSender
from tastebud.schemas import Item
from tastebud.stores import StoreError
from tastebud.stores.push import PushStore, SentPush
from tastebud.trending.lists import NothingPublished, trending_items

log = get_logger("tastebud.jobs.push")
USERS_PAGE = 500
TRENDING_DEPTH = 50


def run(context: JobContext) -> dict[str, Any]:
    store: PushStore = context.stores.database.push
    keys = store.vapid_keys()
    if keys is None:
        return {"skipped": "no VAPID keys yet: run `tastebud push keys`"}
    push_run = PushRun(context, store, PushSender(keys, context.settings.push))
    try:
        after: str | None = None
        while True:
            users = store.subscribed_users(after=after, limit=USERS_PAGE)
            for user_id in users:
                context.check()
                push_run.users[push_run.notify(user_id)] += 1
            if len(users) < USERS_PAGE:
                break
            after = users[-1]
    finally:
        push_run.sender.close()
    pruned = store.prune_sent(policy.history_start(push_run.now, context.settings.push))
    summary = {
        "users": sum(push_run.users.values()),
        **{outcome: push_run.users[outcome] for outcome in USER_OUTCOMES},
        **{f"devices_{status}": push_run.devices[status] for status in DEVICE_OUTCOMES},
        "new_items": len(push_run.fresh),
        "sent_log_pruned": pruned,
    }
    log.info("push_run", **summary)
    return summary


USER_OUTCOMES = ("notified", "capped", "quiet", "nothing_to_say", "undelivered")
DEVICE_OUTCOMES = ("sent", "expired", "retry", "refused")


class PushRun:
    """One run's shared state: the moment it decides at, new items, trending lists (read
    once per category) and the counts it reports."""

    def __init__(self, context: JobContext, store: PushStore, sender: PushSender) -> None:
        self.context = context
        self.settings = context.settings.push
        self.store = store
        self.sender = sender
        self.now = context.end.timestamp()
        self.fresh = messages.new_items(context.stores.catalog, context.end, self.settings)
        self._trending: dict[str | None, list[str]] = {}
        self.users: Counter[str] = Counter()
        self.devices: Counter[str] = Counter()

    def trending(self, category: str | None) -> list[str]:
        if category not in self._trending:
            try:
                found = trending_items(self.context.stores.online, category, TRENDING_DEPTH)
                self._trending[category] = [entry["item_id"] for entry in found.items]
            except (NothingPublished, StoreError):
                self._trending[category] = []
        return self._trending[category]

    def items(self, ids: list[str]) -> dict[str, Item]:
        return lookup_items(self.context.stores.catalog, ids)

    def notify(self, user_id: str) -> str:
        """One user's turn; returns its outcome (one of ``USER_OUTCOMES``)."""
        history = self.store.sent_since(user_id, policy.history_start(self.now, self.settings))
        if policy.capped(history, self.now, self.settings) is not None:
            return "capped"
        devices = policy.awake(self.store.subscriptions(user_id), self.context.end, self.settings)
        if not devices:
            return "quiet"
        announcement = messages.choose(
            self.affinity(user_id),
            self.fresh,
            self.trending,
            self.items,
            {entry.item_id for entry in history},
            self.settings,
        )
        if announcement is None:
            return "nothing_to_say"
        push_id = uuid.uuid4().hex
        data = messages.encode(messages.payload(announcement, push_id))
        delivered = 0
        for device in devices:
            self.context.check()
            if self.store.get(device.endpoint) != device:
                continue  # opted out (or taken over) since the list was read
            outcome = self.sender.send(device, data, topic=announcement.kind)
            self.devices[outcome.status] += 1
            if outcome.status == "sent":
                delivered += 1
            elif outcome.status == "expired":
                self.store.remove([device.endpoint])
            else:
                log.warning(
                    "push_undelivered",
                    user_id=user_id,
                    status=outcome.status,
                    detail=outcome.detail,
                )
        if not delivered:
            return "undelivered"
        item_id = announcement.item.item_id
        self.store.record_sent([SentPush(user_id, item_id, announcement.kind, push_id, self.now)])
        return "notified"

    def affinity(self, user_id: str) -> dict[str, float]:
        """The user's category shares as the ``affinity`` job published them ({} if none)."""
        try:
            raw = self.context.stores.online.get(AFFINITY_KEY.format(user_id=user_id))
            if raw is None:
                return {}
            document = json.loads(raw)
            return {str(e["category"]): float(e["share"]) for e in document.get("categories", [])}
        except (StoreError, ValueError, TypeError, KeyError, AttributeError):
            return {}
