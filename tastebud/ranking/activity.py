"""Each user's recent events in the online store: how serving sees an event within a second.

The gateway appends every accepted event to its user's capped list (``push_lists``, atomic
per key, so workers appending at once lose nothing); a recommendation request reads the
list back. Because the online store is shared (SQLite file or Redis), an event accepted by
one worker changes the next list served by any worker, with no retraining.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pyarrow as pa

from tastebud.config import EventTypeSpec
from tastebud.observability import get_logger, metrics
from tastebud.ranking.types import Activity
from tastebud.stores import OnlineStore

log = get_logger("tastebud.ranking.activity")
PREFIX = "activity:"
RECORDED = metrics.counter(
    "reco",
    "activity_recorded",
    "events",
    "Accepted events written to the users' recent-activity lists, by outcome.",
    labels=("outcome",),
)


def activity_key(user_id: str) -> str:
    return f"{PREFIX}{user_id}"


def activity_marker(entries: list[bytes]) -> str | None:
    """What changes whenever an event is appended to a user's list: a digest of the newest
    entry, which carries its event id (so a late event with an old timestamp changes it too).
    A precomputed list stores the marker it was ranked under; a different one means stale."""
    if not entries:
        return None
    return hashlib.blake2b(entries[-1], digest_size=8).hexdigest()


class RecentActivity:
    """Write and read users' recent events (``keep`` newest per user, ``ttl`` seconds)."""

    def __init__(
        self,
        online: OnlineStore,
        event_types: Mapping[str, EventTypeSpec],
        *,
        keep: int = 50,
        ttl_seconds: float | None = 30 * 86_400.0,
    ) -> None:
        self.online = online
        self.event_types = event_types
        self.keep = keep
        self.ttl_seconds = ttl_seconds

    def record(self, events: pa.Table) -> int:
        """Append accepted events (a gateway table) to their users' lists; returns how many.
        Raises what the online store raises: the caller decides whether that matters."""
        columns = ("event_id", "user_id", "item_id", "event_type", "timestamp")
        rows = events.select(list(columns)).to_pylist()
        lists: dict[str, list[bytes]] = {}
        for row in rows:
            if not row["user_id"] or not row["item_id"]:
                continue
            entry = [row["item_id"], row["event_type"], row["timestamp"].timestamp()]
            lists.setdefault(activity_key(row["user_id"]), []).append(
                json.dumps([*entry, row["event_id"]], separators=(",", ":")).encode()
            )
        if lists:
            self.online.push_lists(lists, keep=self.keep, ttl_seconds=self.ttl_seconds)
        return sum(len(values) for values in lists.values())

    def read_raw(self, user_id: str) -> list[bytes]:
        """The list as stored, in push order: enough for ``activity_marker`` unparsed."""
        return self.online.get_list(activity_key(user_id))

    def parse(self, user_id: str, entries: list[bytes]) -> list[Activity]:
        """The user's recent events, oldest first (a repeated event id counts once; event
        types no longer configured are skipped)."""
        seen: set[str] = set()
        out: list[Activity] = []
        for raw in entries:
            try:
                item_id, event_type, timestamp, event_id = json.loads(raw)
            except (ValueError, TypeError):
                log.warning("activity_entry_unreadable", user_id=user_id)
                continue
            spec = self.event_types.get(event_type)
            if spec is None or event_id in seen:
                continue
            seen.add(event_id)
            out.append(Activity(item_id, event_type, float(timestamp), spec.weight))
        out.sort(key=lambda activity: activity.timestamp)
        return out
