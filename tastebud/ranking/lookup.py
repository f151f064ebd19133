"""Answers that need no ranking: a user's precomputed list while it holds
(``tastebud.ranking.precomputed`` says when), and the one list every user the model does
not know and with no recent activity gets, ranked once per worker every few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from tastebud.config import Settings
from tastebud.observability import get_logger
from tastebud.ranking.metrics import PRECOMPUTED
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key, settings_fingerprint
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import RankRequest, Served
from tastebud.ranking_config import RankingSettings
from tastebud.stores import OnlineStore
from tastebud.stores.activity import RecentActivity, activity_marker

log = get_logger("tastebud.ranking")
ANONYMOUS_CACHE_SECONDS = 5.0  # as long as the published lists are cached


@dataclass(frozen=True)
class Lookup:
    """A lookup before ranking: the user's stored list when it holds (``stored``, its items
    still encoded), or the shared list of unknown users (``served``); and the user's
    recent-activity entries when they were read on the way (ranking reuses them)."""

    stored: PrecomputedList | None = None
    served: Served | None = None
    entries: list[bytes] | None = None


class StoredLists:
    """Finds the lists that hold for a request of the default shape."""

    def __init__(self, settings: Settings, online: OnlineStore, activity: RecentActivity) -> None:
        self.settings = settings
        self.serving = settings.serving
        self.online = online
        self.activity = activity
        self.fingerprint = settings_fingerprint(settings.ranking, self.serving.precomputed_k)
        # (k, explain) -> (when, snapshot, list) for users unknown to the model, no activity
        self._anonymous: dict[tuple[int, bool], tuple[float, Snapshot, Served]] = {}

    def applies(
        self, request: RankRequest, session_items: Sequence[str], ranking: RankingSettings | None
    ) -> bool:
        """Only the default request shape has a precomputed list."""
        return (
            self.serving.precomputed
            and request.k == self.serving.precomputed_k
            and request.category is None
            and not request.exclude
            and request.now is None
            and not session_items
            and (ranking is None or ranking is self.settings.ranking)
        )

    def precomputed(
        self, snapshot: Snapshot, user_id: str, catalog_error: str | None
    ) -> tuple[PrecomputedList | None, list[bytes] | None, str]:
        """The user's stored list if it still holds (see ``tastebud.ranking.precomputed``),
        their recent-activity entries when they were read on the way, and the outcome."""
        stored: PrecomputedList | None = None
        entries: list[bytes] | None = None
        try:
            raw = self.online.get(precomputed_key(user_id))
            stored = None if raw is None else PrecomputedList.decode(raw)
            if raw is None:
                outcome = "missing"
            elif stored is None:
                outcome = "unreadable"
            else:
                outcome = self._stale(snapshot, stored, catalog_error) or ""
                if not outcome:
                    entries = self.activity.read_raw(user_id)
                    if activity_marker(entries) != stored.activity:
                        outcome = "stale_activity"
                    else:
                        outcome = _inactive(snapshot, stored) or "hit"
        except Exception as error:  # the on-demand path reports the store as degraded
            outcome = "unreadable"
            log.warning("precomputed_unreadable", error=f"{type(error).__name__}")
        PRECOMPUTED.labels(outcome=outcome).inc()
        return (stored if outcome == "hit" else None), entries, outcome

    def _stale(
        self, snapshot: Snapshot, stored: PrecomputedList, catalog_error: str | None
    ) -> str | None:
        if (
            stored.model_version != snapshot.model_version
            or stored.content_version != snapshot.content_version
        ):
            return "stale_model"
        if stored.fingerprint != self.fingerprint:
            return "stale_settings"
        if time.time() - stored.ranked_at > self.serving.precomputed_max_age_seconds:
            return "expired"
        if catalog_error is not None:
            return "degraded"
        return None

    def anonymous(
        self, snapshot: Snapshot, user_id: str, request: RankRequest
    ) -> tuple[Served | None, list[bytes] | None]:
        """The list every user the model does not know and with no recent activity gets,
        ranked once per worker every ``ANONYMOUS_CACHE_SECONDS`` (it changes only with the
        published lists, which are cached as long); and the user's activity entries."""
        if snapshot.model is not None and snapshot.model.model.users_.index_of(user_id) >= 0:
            return None, None
        try:
            entries = self.activity.read_raw(user_id)
        except Exception:  # the on-demand path reports it
            return None, None
        cached = self._anonymous.get((request.k, request.explain))
        if entries or cached is None:
            return None, entries
        at, ranked_on, served = cached
        if ranked_on is not snapshot or time.monotonic() - at > ANONYMOUS_CACHE_SECONDS:
            return None, entries
        return served, entries

    def remember_anonymous(self, snapshot: Snapshot, request: RankRequest, served: Served) -> None:
        """Keep ``served`` as the shared list of unknown users for ``request``'s shape."""
        self._anonymous[(request.k, request.explain)] = (time.monotonic(), snapshot, served)


def _inactive(snapshot: Snapshot, stored: PrecomputedList) -> str | None:
    """An item deactivated since the list was ranked (items are never deleted, and the
    model and embeddings versions match, so every stored id is still known)."""
    inactive = snapshot.inactive_ids
    if inactive and not inactive.isdisjoint(stored.item_ids):
        return "inactive_item"
    return None
