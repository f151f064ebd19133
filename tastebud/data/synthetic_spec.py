"""What synthetic world to generate: ``WorldSpec``, its checks and its fingerprint.

Below the generator's other modules (``synthetic_world`` and ``synthetic_day`` read the
spec; ``synthetic`` writes the world out), so none of them imports another to know it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WorldSpec:
    """What world to generate. Counts are totals over the period, including late arrivals.

    Behaviour knobs (all shares are probabilities per interaction unless noted):
    ``taste_concentration`` is the mean Dirichlet alpha per category (small = focused
    users); ``popularity_exponent`` the Pareto shape of item popularity (smaller = heavier
    head); ``creator_share`` / ``explore_share`` route interactions to a favourite creator's
    items / to anything popular instead of the user's taste; ``session_focus`` is the chance
    an interaction stays in its session's category; ``initial_*_fraction`` is the share of
    users and items that exist at ``start`` (the rest arrive uniformly over the period);
    ``trending_items`` items get ``trending_boost`` (x0.6-1.4) over a window of whole days;
    they are drawn among the items existing at ``start`` whose popularity lies within the
    ``trending_band`` quantiles, and ``trending_at_end`` of them start on the last day, so
    the world ends with something trending "now".
    """

    users: int = 1000
    items: int = 2000
    days: int = 30
    seed: int = 0
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    categories: int = 20
    creators: int | None = None  # None: items // 8
    events_per_user_day: float = 5.0  # mean over users that exist; 1000 x 30 -> ~130k events
    interactions_per_session: float = 6.0  # geometric mean
    mean_gap_seconds: float = 30.0  # between one interaction ending and the next starting
    activity_sigma: float = 0.8  # lognormal spread of per-user activity (mean 1)
    taste_concentration: float = 0.15
    favorite_creators: int = 3
    creator_category_loyalty: float = 0.85  # share of a creator's items in its home category
    secondary_category_share: float = 0.3
    popularity_exponent: float = 1.2
    creator_share: float = 0.1
    explore_share: float = 0.08
    session_focus: float = 0.6
    play_share: float = 0.6  # interactions that are plays; the rest are views
    rating_share: float = 0.03
    context_share: float = 0.25  # views/plays that carry {"page": ...}
    initial_user_fraction: float = 0.7
    initial_item_fraction: float = 0.8
    new_item_boost: float = 2.0  # extra popularity multiple of a brand-new item
    new_item_half_life_days: float = 7.0
    trending_items: int = 5
    trending_boost: float = 12.0
    trending_band: tuple[float, float] = (0.5, 0.9)
    trending_at_end: int = 0
    inactive_fraction: float = 0.01
    weekly: bool = True

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("users", "items", "days", "categories")
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1
        ]
        if self.creators is not None and (not _is_int(self.creators) or self.creators < 1):
            problems.append(f"creators must be >= 1 or None, got {self.creators}")
        for name in ("seed", "favorite_creators", "trending_items", "trending_at_end"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                problems.append(f"{name} must be an integer >= 0, got {getattr(self, name)}")
        for name in (
            "events_per_user_day",
            "mean_gap_seconds",
            "activity_sigma",
            "taste_concentration",
            "popularity_exponent",
            "new_item_half_life_days",
        ):
            if not _positive(getattr(self, name)):
                problems.append(f"{name} must be a positive number, got {getattr(self, name)}")
        if not _positive(self.interactions_per_session) or self.interactions_per_session < 1:
            problems.append("interactions_per_session must be >= 1")
        for name in (
            "creator_category_loyalty",
            "secondary_category_share",
            "creator_share",
            "explore_share",
            "session_focus",
            "play_share",
            "rating_share",
            "context_share",
            "initial_user_fraction",
            "initial_item_fraction",
            "inactive_fraction",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if self.creator_share + self.explore_share > 1.0:
            problems.append("creator_share + explore_share must not exceed 1")
        if not (self.new_item_boost >= 0 and self.trending_boost >= 1):
            problems.append("new_item_boost must be >= 0 and trending_boost >= 1")
        if _is_int(self.trending_at_end) and self.trending_at_end > self.trending_items:
            problems.append("trending_at_end must not exceed trending_items")
        low, high = self.trending_band
        if not 0.0 <= low < high <= 1.0:
            problems.append(
                f"trending_band must be quantiles 0 <= low < high <= 1, got {low, high}"
            )
        if not isinstance(self.start, datetime) or self.start.tzinfo is None:
            problems.append("start must be a timezone-aware datetime")
        if problems:
            raise ValueError("invalid WorldSpec: " + "; ".join(problems))

    @classmethod
    def ending(cls, end: datetime, **fields: Any) -> WorldSpec:
        """The world of ``fields`` placed so that it ends at ``end`` (a timezone-aware time)."""
        if not isinstance(end, datetime) or end.tzinfo is None:
            raise ValueError("invalid WorldSpec: end must be a timezone-aware datetime")
        days = fields.get("days", cls.days)
        if not _is_int(days) or days < 1:
            raise ValueError(f"invalid WorldSpec: days must be >= 1, got {days}")
        return cls(start=end.astimezone(UTC) - timedelta(days=days), **fields)

    @property
    def world_id(self) -> str:
        """``syn{seed}.{hash}``: the prefix of this world's event and session ids."""
        return f"syn{self.seed}.{spec_fingerprint(self)}"

    @property
    def resolved_creators(self) -> int:
        return self.creators if self.creators is not None else max(1, self.items // 8)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def spec_fingerprint(spec: WorldSpec) -> str:
    """Six hex digits of a hash over every field of ``spec`` (start as UTC ISO-8601)."""
    fields = dataclasses.asdict(spec)
    fields["start"] = spec.start.astimezone(UTC).isoformat()
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and np.isfinite(value) and value > 0
