"""Scoring: the blend of CF, content and the popularity prior, then score boosts.

Every term is min-max normalised to [0, 1] over the candidates, 0 where a source cannot
score an item::

    personal = alpha * cf + (1 - alpha) * content      (cf alone, or content alone, when
                                                       only one can score this user)
    ramp     = min(1, interactions / cold_start.min_interactions)
    score    = ramp * personal + (1 - ramp) * prior + recency_boost

``prior`` is the better of an item's places in the popular and trending lists (1 - rank /
length), raised by the user's affinity to its category when the feature store knows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tastebud.ranking.history import History
from tastebud.ranking.rerank import minmax, recency_boost
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import POPULAR, TRENDING
from tastebud.ranking.work import Blended, Work

_EMPTY = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Blend:
    """``[ranking.blend]`` and ``[ranking.cold_start]``: the weights of the terms."""

    alpha: float
    min_interactions: int
    name: str = "blend"

    def score(self, work: Work) -> None:
        snapshot, positions = work.snapshot, work.positions
        cf = minmax(cf_raw(snapshot, positions, work.user_vector, work.dense))
        centre = content_centre(snapshot, work.history)
        content = np.zeros(len(positions), np.float32)
        if centre is not None and snapshot.vectors is not None:
            raw = snapshot.vectors[positions] @ centre
            raw[snapshot.content_row[positions] < 0] = np.nan
            content = minmax(raw)
        has_cf = work.user_vector is not None or work.dense is not None
        has_content = centre is not None
        if has_cf and has_content:
            cf_weight, content_weight = self.alpha, 1.0 - self.alpha
        elif has_cf:
            cf_weight, content_weight = 1.0, 0.0
        elif has_content:
            cf_weight, content_weight = 0.0, 1.0
        else:
            cf_weight = content_weight = 0.0
        personal_signal = has_cf or has_content
        ramp = 0.0
        if personal_signal:
            ramp = min(1.0, work.history.interactions / self.min_interactions)
        trending = work.listed.get(TRENDING, _EMPTY)
        popular = work.listed.get(POPULAR, _EMPTY)
        affinity = work.context.category_affinity
        prior = minmax(prior_scores(snapshot, positions, trending, popular, affinity))
        personal = cf_weight * cf + content_weight * content
        work.relevance = ramp * personal + (1.0 - ramp) * prior
        work.blended = Blended(
            cf, content, prior, cf_weight, content_weight, ramp, personal_signal=personal_signal
        )


@dataclass(frozen=True)
class RecencyBoost:
    """``[ranking.recency]``: min(cap, weight * 2^(-age_days / half_life_days)), added."""

    weight: float
    half_life_days: float
    cap: float
    name: str = "recency"

    def boost(self, work: Work) -> None:
        age_days = (work.now - work.snapshot.catalog.created_at[work.positions]) / 86_400.0
        work.recency = recency_boost(age_days, self.weight, self.half_life_days, self.cap)
        work.relevance = (work.relevance + work.recency).astype(np.float32)


def cf_raw(
    snapshot: Snapshot,
    positions: np.ndarray,
    user_vector: np.ndarray | None,
    dense: np.ndarray | None,
) -> np.ndarray:
    """CF scores of every candidate, not only of the CF ones: a cold item is scored through
    its content-mapped CF vector; NaN where neither exists."""
    raw = np.full(len(positions), np.nan, dtype=np.float32)
    columns = snapshot.model_column[positions] if len(snapshot.model_column) else None
    if columns is None:
        return raw
    known = columns >= 0
    if user_vector is not None and snapshot.model is not None:
        factors = snapshot.model.factors
        assert factors is not None
        raw[known] = factors.item_factors_[columns[known]] @ user_vector
        if snapshot.cold_factors is not None:
            cold = snapshot.cold_row[positions]
            mapped = cold >= 0
            raw[mapped] = snapshot.cold_factors[cold[mapped]] @ user_vector
    elif dense is not None:
        raw[known] = dense[columns[known]]
    return raw


def content_centre(snapshot: Snapshot, history: History) -> np.ndarray | None:
    """The unit mean of the content vectors of the user's recent items."""
    if snapshot.content is None or snapshot.vectors is None or not history.content_seeds:
        return None
    seeds = snapshot.positions(history.content_seeds)
    seeds = seeds[(seeds >= 0)]
    seeds = seeds[snapshot.content_row[seeds] >= 0]
    if not len(seeds):
        return None
    centre = snapshot.vectors[seeds].sum(axis=0)
    norm = float(np.linalg.norm(centre))
    return None if norm == 0 else centre / norm


def prior_scores(
    snapshot: Snapshot,
    positions: np.ndarray,
    trending: np.ndarray,
    popular: np.ndarray,
    affinity: dict[str, float],
) -> np.ndarray:
    """The popularity prior of each candidate (NaN when in neither list), before min-max."""
    prior = np.full(len(positions), np.nan, dtype=np.float32)
    for listed in (popular, trending):
        if len(listed):
            prior = np.fmax(prior, places(listed, positions))
    if affinity and len(positions):
        names = snapshot.catalog.category_names
        # One dict lookup per distinct category, not per candidate.
        codes, inverse = np.unique(
            snapshot.catalog.primary_category[positions], return_inverse=True
        )
        shares = [affinity.get(names[c], 0.0) if c >= 0 else 0.0 for c in codes.tolist()]
        share = np.array(shares, np.float32)[inverse]
        prior = np.where(np.isfinite(prior), prior * (1.0 + share), np.nan)
    return prior


def places(listed: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``1 - index / len(listed)`` of each position in ``listed``, NaN when not listed; a
    position listed twice keeps its last index (as a ``{position: place}`` dict would)."""
    by_position = np.argsort(listed, kind="stable")  # equal positions: last index last
    ordered = listed[by_position]
    at = np.searchsorted(ordered, positions, side="right") - 1
    hit = at >= 0
    hit[hit] = ordered[at[hit]] == positions[hit]
    place = (1.0 - np.arange(len(listed)) / len(listed)).astype(np.float32)
    values = np.full(len(positions), np.nan, dtype=np.float32)
    values[hit] = place[by_position[at[hit]]]
    return values
