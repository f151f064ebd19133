"""What to announce to a listener, and the message the service worker shows.

Two kinds, in this order:
- ``new``: an item added within ``push.new_item_hours`` whose categories hold at least
  ``push.min_affinity_share`` of the user's taste (their category affinity, the ``affinity``
  job's shares), the best match first, the newest among equals;
- ``trending``: the top trending item of the user's favourite categories, else of all items.
An item announced to the user before (within ``push.history_days``) is never announced again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from tastebud.config import PushSettings
from tastebud.schemas import Item
from tastebud.stores import CatalogStore

PAYLOAD_VERSION = 1
APP_PATH = "/app/"
MAX_TEXT = 120  # characters of a title or body; push services cap payloads near 4 KB


@dataclass(frozen=True)
class Announcement:
    kind: str  # "new" or "trending"
    item: Item
    category: str | None


def new_items(catalog: CatalogStore, now: datetime, settings: PushSettings) -> list[Item]:
    """Active items created within the window ending at ``now``, newest first."""
    start = now - timedelta(hours=settings.new_item_hours)
    changed, _ = catalog.items_changed_since(start.timestamp())
    fresh = [
        item
        for item in changed
        if item.active and item.created_at is not None and start <= item.created_at <= now
    ]
    return sorted(fresh, key=lambda item: (item.created_at, item.item_id), reverse=True)


def choose(
    affinity: Mapping[str, float],
    fresh: Sequence[Item],
    trending: Callable[[str | None], list[str]],
    items: Callable[[list[str]], Mapping[str, Item]],
    already_sent: set[str],
    settings: PushSettings,
) -> Announcement | None:
    """The one thing to tell this user now, or None. ``trending(category)`` gives a published
    trending list's item ids (None: all items); ``items`` looks ids up in the catalog."""
    best: tuple[float, Item, str | None] | None = None
    for item in fresh:  # newest first, so a tie keeps the newest
        if item.item_id in already_sent:
            continue
        shares = [(affinity.get(category, 0.0), category) for category in item.categories]
        share = sum(value for value, _ in shares)
        if share >= settings.min_affinity_share and share > 0 and (best is None or share > best[0]):
            best = (share, item, max(shares)[1])
    if best is not None:
        return Announcement("new", best[1], best[2])
    favourites = sorted(affinity, key=lambda category: (-affinity[category], category))
    for category in [*favourites[:3], None]:
        candidates = [item_id for item_id in trending(category) if item_id not in already_sent]
        found = items(candidates[:20])
        for item_id in candidates[:20]:
            item = found.get(item_id)
            if item is not None and item.active:
                return Announcement("trending", item, category)
    return None


def payload(announcement: Announcement, push_id: str | None = None) -> dict[str, Any]:
    """The JSON the service worker reads (``sw.js``: ``showPush``)."""
    item = announcement.item
    name = _clip(item.title or item.item_id)
    by = f" by {_clip(item.creator)}" if item.creator else ""
    where = f" in {announcement.category}" if announcement.category else ""
    if announcement.kind == "new":
        title, body = f"New for you: {name}", f"Just added{by}{where}."
    else:
        title, body = f"Trending now: {name}", f"Listeners are playing it{where}{by}."
    push_id = push_id or uuid.uuid4().hex
    return {
        "v": PAYLOAD_VERSION,
        "push_id": push_id,
        "kind": announcement.kind,
        "title": title,
        "body": body,
        "item_id": item.item_id,
        "url": f"{APP_PATH}?item={quote(item.item_id, safe='')}&push={push_id}",
    }


def encode(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
