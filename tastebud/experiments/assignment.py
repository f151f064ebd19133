"""Who sees which variant: deterministic, sticky hashing by unit id (a user id, or an
anonymous session's or device's id), the same as GrowthBook's SDKs so a user lands in the
same bucket in both (``tests/experiments/test_assignment.py`` runs their published cases).

GrowthBook's rules, followed exactly: hash v2 is ``fnv1a32(str(fnv1a32(seed + id))) %
10000 / 10000``; a namespace is entered when ``hash_v1("__" + name, id)`` falls in its
range; variant ``i`` owns ``[cum_i, cum_i + traffic * weight_i)`` where ``cum_i`` sums the
weights before it. Written here (25 lines) rather than importing the ``growthbook`` SDK,
whose evaluation drags in its feature-flag client, HTTP fetching and caching.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tastebud.experiments.definition import Experiment, Namespace
from tastebud.ranking_config import RankingSettings

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(text: str) -> int:
    value = FNV_OFFSET
    for byte in text.encode():
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return value


def gb_hash(seed: str, value: str, version: int = 2) -> float | None:
    """GrowthBook's hash of ``value`` under ``seed``: a float in [0, 1), None for an
    unknown version (as theirs)."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10_000) / 10_000
    if version == 1:
        return (fnv1a32(value + seed) % 1_000) / 1_000
    return None


def bucket_ranges(weights: Sequence[float], coverage: float) -> list[tuple[float, float]]:
    """Each variant's range of the hash: its weight times the traffic fraction, laid end to
    end from 0 (GrowthBook's ``getBucketRanges`` for valid weights)."""
    coverage = min(max(coverage, 0.0), 1.0)
    ranges: list[tuple[float, float]] = []
    start = 0.0
    for weight in weights:
        ranges.append((start, start + coverage * weight))
        start += weight
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding ``n``, or -1 (not in the experiment)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(unit_id: str, namespace: Namespace) -> bool:
    n = gb_hash("__" + namespace.name, unit_id, 1)
    return n is not None and namespace.start <= n < namespace.end


@dataclass(frozen=True, slots=True)
class Assignment:
    """What a request gets: the variant it is reported under, the ranking settings and
    model to use, and whether its exposure counts toward the analysis (not for a forced
    variant, nor for the users of a paused variant, who get control)."""

    experiment: str
    variant: str
    ranking: RankingSettings
    model: str | None
    counted: bool = True
    forced: bool = False


@dataclass(frozen=True, slots=True)
class _Running:
    experiment: Experiment
    ranges: list[tuple[float, float]]
    rankings: list[RankingSettings]
    start: float | None
    end: float | None


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


class ExperimentBook:
    """The running experiments one worker assigns from, prepared once per change of the
    definitions (ranges and resolved ranking settings), so that ``assign`` only hashes.

    A unit enters at most one experiment: the first, by start then key, whose namespace and
    traffic take it. Variant ranking overrides apply on top of ``ranking`` (the configured
    ``[ranking]``); an experiment whose overrides no longer validate is left out."""

    def __init__(self, experiments: Sequence[Experiment], ranking: RankingSettings) -> None:
        running = [e for e in experiments if e.status == "running"]
        running.sort(key=lambda e: (_epoch(e.start) or 0.0, e.key))
        self.running: list[_Running] = []
        self.skipped: dict[str, str] = {}
        for experiment in running:
            try:
                rankings = [ranking.with_overrides(v.ranking) for v in experiment.variants]
            except ValueError as error:  # pydantic's ValidationError is a ValueError
                self.skipped[experiment.key] = str(error).splitlines()[0]
                continue
            ranges = bucket_ranges([v.weight for v in experiment.variants], experiment.traffic)
            self.running.append(
                _Running(
                    experiment, ranges, rankings, _epoch(experiment.start), _epoch(experiment.end)
                )
            )

    def __bool__(self) -> bool:
        return bool(self.running)

    def assign(
        self, unit_id: str, *, forced: tuple[str, str] | None = None, now: float | None = None
    ) -> Assignment | None:
        """The unit's assignment, or None (in no running experiment). ``forced``: an
        ``(experiment, variant)`` pair for QA, served and reported but never counted."""
        if forced is not None:
            return self._forced(*forced)
        if not self.running:
            return None
        moment = time.time() if now is None else now
        for entry in self.running:
            experiment = entry.experiment
            if (entry.start is not None and moment < entry.start) or (
                entry.end is not None and moment >= entry.end
            ):
                continue
            if experiment.namespace is not None and not in_namespace(unit_id, experiment.namespace):
                continue
            n = gb_hash(experiment.hash_seed, unit_id, 2)
            index = choose_variation(n if n is not None else -1.0, entry.ranges)
            if index < 0:
                continue
            variant = experiment.variants[index]
            if variant.name in experiment.paused_variants:
                control = experiment.control
                return Assignment(
                    experiment.key, control.name, entry.rankings[0], control.model, counted=False
                )
            return Assignment(experiment.key, variant.name, entry.rankings[index], variant.model)
        return None

    def _forced(self, key: str, name: str) -> Assignment | None:
        """The variant ``name`` of experiment ``key`` (any running one with such a variant,
        in assignment order, when ``key`` is empty)."""
        for entry in self.running:
            if entry.experiment.key == key or not key:
                for index, variant in enumerate(entry.experiment.variants):
                    if variant.name == name:
                        return Assignment(
                            entry.experiment.key,
                            name,
                            entry.rankings[index],
                            variant.model,
                            counted=False,
                            forced=True,
                        )
        return None
