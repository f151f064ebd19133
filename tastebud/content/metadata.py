"""Metadata features: categories multi-hot, creator popularity, item age, and the precomputed
audio attributes music APIs provide (danceability, energy, tempo...), taken as they are.

Every encoder here is fitted once per artifact and saved as JSON, so an incremental update
encodes a new item exactly as the items embedded before it were.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from tastebud.schemas import Item

OTHER = "other"
DEFAULT_MAX_CATEGORIES = 64
# Spotify-style audio attributes; any of them present in ``attributes`` is used as is.
PRECOMPUTED_ATTRIBUTES = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "loudness",
    "tempo",
)


def attribute_values(item: Item) -> tuple[dict[str, float], list[str]]:
    """The precomputed attributes an item has, and the names of those that are NaN or not
    numbers (reported, then treated as missing)."""
    values: dict[str, float] = {}
    bad: list[str] = []
    for name in PRECOMPUTED_ATTRIBUTES:
        raw = item.attributes.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            bad.append(name)
            continue
        if math.isfinite(value):
            values[name] = value
        else:
            bad.append(name)
    return values, bad


def attribute_block(items: Sequence[Item]) -> tuple[np.ndarray, dict[str, list[str]]]:
    """(n x len(PRECOMPUTED_ATTRIBUTES), NaN where missing) and bad attribute names per item."""
    block = np.full((len(items), len(PRECOMPUTED_ATTRIBUTES)), np.nan, dtype=np.float64)
    problems: dict[str, list[str]] = {}
    for row, item in enumerate(items):
        values, bad = attribute_values(item)
        for column, name in enumerate(PRECOMPUTED_ATTRIBUTES):
            if name in values:
                block[row, column] = values[name]
        if bad:
            problems[item.item_id] = bad
    return block, problems


@dataclass
class CategoryEncoder:
    """Multi-hot over the ``max_categories`` most frequent categories plus ``other`` (every
    rarer or unseen category): the width never depends on how many genres a catalog has."""

    max_categories: int = DEFAULT_MAX_CATEGORIES
    vocabulary_: list[str] = field(default_factory=list)

    def fit(self, categories: Iterable[Sequence[str]]) -> CategoryEncoder:
        counts: Counter[str] = Counter()
        for values in categories:
            counts.update({_norm(value) for value in values if value and value.strip()})
        ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
        self.vocabulary_ = [name for name, _ in ranked if name != OTHER][: self.max_categories]
        return self

    @property
    def fields(self) -> list[str]:
        return [f"category_{name}" for name in self.vocabulary_] + [f"category_{OTHER}"]

    def transform(self, categories: Sequence[Sequence[str]]) -> np.ndarray:
        """(n x (len(vocabulary) + 1)); NaN rows for items without categories (missing,
        not "none of these")."""
        index = {name: column for column, name in enumerate(self.vocabulary_)}
        other = len(self.vocabulary_)
        block = np.zeros((len(categories), other + 1), dtype=np.float64)
        for row, values in enumerate(categories):
            names = [_norm(value) for value in values if value and value.strip()]
            if not names:
                block[row] = np.nan
            for name in names:
                block[row, index.get(name, other)] = 1.0
        return block

    def state(self) -> dict[str, Any]:
        return {"max_categories": self.max_categories, "vocabulary": self.vocabulary_}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CategoryEncoder:
        return cls(int(state["max_categories"]), list(state["vocabulary"]))


def _norm(value: str) -> str:
    return " ".join(value.strip().lower().split())


@dataclass
class MetadataEncoder:
    """Creator popularity (log1p of the creator's events at fit time) and item age (log1p of
    days between ``created_at`` and the fit's reference time).

    Both are frozen at fit time: a new item by a known creator gets the popularity its
    creator had when the artifact was built; an unknown creator had no events then, so 0.
    Rebuilding the artifact refreshes them.
    """

    reference_time: datetime | None = None
    creator_events_: dict[str, float] = field(default_factory=dict)

    FIELDS = ("creator_popularity", "item_age_days")

    def fit(
        self, items: Sequence[Item], item_events: Mapping[str, float], now: datetime
    ) -> MetadataEncoder:
        self.reference_time = now.astimezone(UTC)
        totals: Counter[str] = Counter()
        for item in items:
            if item.creator:
                totals[_norm(item.creator)] += float(item_events.get(item.item_id, 0.0))
        self.creator_events_ = {name: float(count) for name, count in totals.items() if count}
        return self

    def transform(self, items: Sequence[Item]) -> np.ndarray:
        """(n x 2): NaN where unknown (no creator, no ``created_at``)."""
        block = np.full((len(items), 2), np.nan, dtype=np.float64)
        reference = self.reference_time or datetime.now(UTC)
        for row, item in enumerate(items):
            if item.creator:
                block[row, 0] = math.log1p(self.creator_events_.get(_norm(item.creator), 0.0))
            if item.created_at is not None:
                days = (reference - item.created_at.astimezone(UTC)).total_seconds() / 86_400
                block[row, 1] = math.log1p(max(days, 0.0))
        return block

    def state(self) -> dict[str, Any]:
        return {
            "reference_time": self.reference_time.isoformat() if self.reference_time else None,
            "creator_events": self.creator_events_,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MetadataEncoder:
        reference = state.get("reference_time")
        return cls(
            datetime.fromisoformat(reference) if reference else None,
            {str(k): float(v) for k, v in state.get("creator_events", {}).items()},
        )


def item_event_counts(events: Any, item_ids: Iterable[str] | None = None) -> dict[str, float]:
    """Events per item from an ``EventStore`` (bounded-memory batches, counted in Arrow)."""
    partials = []
    for batch in events.iter_batches():
        table = pa.table({"item_id": batch.column("item_id")})
        partials.append(table.group_by("item_id").aggregate([("item_id", "count")]))
    if not partials:
        return {}
    merged = pa.concat_tables(partials).group_by("item_id").aggregate([("item_id_count", "sum")])
    counts = dict(
        zip(
            merged.column("item_id").to_pylist(),
            merged.column("item_id_count_sum").to_pylist(),
            strict=True,
        )
    )
    if item_ids is not None:
        wanted = set(item_ids)
        counts = {key: value for key, value in counts.items() if key in wanted}
    return {key: float(value) for key, value in counts.items()}
