"""Candidate sources: each proposes item-space positions to the request's ``CandidateSet``.

A source is a small frozen component with its settings (``[ranking.candidates]``); the
pipeline runs them in the order ``SOURCES`` names (CF, content, trending, popular, new),
which is also the order ties are broken in. A source set to propose 0 items is left out.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import CF, CONTENT, NEW, POPULAR, TRENDING
from tastebud.ranking.work import Work
from tastebud.ranking_config import CandidateSettings


class CandidateSource(Protocol):
    name: str

    def propose(self, work: Work) -> None: ...


@dataclass(frozen=True)
class CfSource:
    """CF top-N, seen items excluded (scoring recomputes every candidate's CF score)."""

    limit: int
    name: str = "cf"

    def propose(self, work: Work) -> None:
        snapshot, serving = work.snapshot, work.snapshot.model
        if serving is None or (work.user_vector is None and work.dense is None):
            return
        seen = snapshot.model_column[work.history.consumed]
        seen = seen[seen >= 0]
        if work.user_vector is not None and serving.retriever is not None:
            found = serving.retriever.search(work.user_vector[None, :], self.limit, exclude=[seen])
            columns, scores = found[0][0], found[1][0]
        else:
            assert work.dense is not None
            masked = work.dense.astype(np.float32, copy=True)
            masked[seen] = -np.inf
            take = min(self.limit, len(masked))
            columns = np.argpartition(-masked, take - 1)[:take]
            scores = masked[columns]
        valid = (columns >= 0) & np.isfinite(scores)
        work.found.add(snapshot.model_to_space[columns[valid]], CF)


@dataclass(frozen=True)
class ContentSource:
    """The content neighbours of the user's recent items (``History.content_seeds``)."""

    limit: int
    name: str = "content"

    def propose(self, work: Work) -> None:
        snapshot, seeds = work.snapshot, work.history.content_seeds
        if snapshot.content is None or not seeds:
            return
        ids, _ = snapshot.content.candidates(seeds, k=self.limit)
        chosen = [item_id for item_id in ids if item_id is not None]
        if chosen:
            work.found.add(snapshot.positions(chosen), CONTENT)


@dataclass(frozen=True)
class TrendingSource:
    """The head of the published trending list (kept for the blend's prior)."""

    limit: int
    name: str = "trending"

    def propose(self, work: Work) -> None:
        ids = work.context.trending
        if ids:
            listed = work.snapshot.head_positions(ids, self.limit)
            work.listed[TRENDING] = work.found.add(listed, TRENDING)


@dataclass(frozen=True)
class PopularSource:
    """The head of the published popular list (the model's popularity when none is), at
    least k long so a cold-start list is never shorter than asked for."""

    limit: int
    name: str = "popular"

    def propose(self, work: Work) -> None:
        snapshot, ids = work.snapshot, work.context.popular
        limit = max(self.limit, work.request.k)
        if ids is None:
            positions = snapshot.popular
            if work.in_category is not None:
                positions = positions[work.in_category[positions]]
        else:  # only the first ``limit`` ids are used: look up no more
            positions = snapshot.head_positions(ids, limit)
        work.listed[POPULAR] = work.found.add(positions[:limit], POPULAR)


@dataclass(frozen=True)
class NewSource:
    """The newest active items, created within ``days``."""

    limit: int
    days: float
    name: str = "new"

    def propose(self, work: Work) -> None:
        fresh = created_since(work.snapshot, work.now - self.days * 86_400)
        if work.in_category is not None:
            fresh = fresh[work.in_category[fresh]]
        work.found.add(fresh[: self.limit], NEW)


def created_since(snapshot: Snapshot, cutoff: float) -> np.ndarray:
    """The items of ``snapshot.fresh`` created at or after ``cutoff``: a prefix, as it is
    sorted newest first, found by bisection instead of reading every dated item's age."""
    fresh, created = snapshot.fresh, snapshot.catalog.created_at
    return fresh[: bisect.bisect_right(fresh, -cutoff, key=lambda p: -created[p])]


def candidate_sources(settings: CandidateSettings) -> Sequence[CandidateSource]:
    """The sources ``[ranking.candidates]`` asks for, in proposal order."""
    sources: list[CandidateSource] = []
    if settings.cf:
        sources.append(CfSource(settings.cf))
    if settings.content:
        sources.append(ContentSource(settings.content))
    if settings.trending:
        sources.append(TrendingSource(settings.trending))
    sources.append(PopularSource(settings.popular))  # always: k items at least
    if settings.fresh:
        sources.append(NewSource(settings.fresh, settings.fresh_days))
    return tuple(sources)
