"""Experiments on the request path: which variant a request gets (``plan``) and the record
of what it was served (``expose``).

``plan`` hashes the unit (a user id, or an anonymous session's or device's id) through the
worker's current ``ExperimentBook`` (``tastebud.experiments.assignment``; kept current off
the request path by whoever gives the service its book). The variant's ranking overrides
apply; ranking settings equal to the configured ones are replaced by None, so the request
keeps the precomputed lists and the shared pipeline. A variant's model comes from
``tastebud.ranking.variants``; until it is ready, or when it cannot load, the request gets
its experiment's control, reported but not counted. A book that fails gives no experiment at
all. Both are counted (``tastebud_experiment_fallbacks_total``), and neither fails a request.

``expose`` gives every served list a new id (``list_id``, which client events may carry as
``context.list_id``) and appends its exposure to the exposure log without waiting.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tastebud.experiments.assignment import Assignment, ExperimentBook
from tastebud.experiments.exposure import Exposure
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.observability import get_logger, metrics
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.variants import VariantModels
from tastebud.ranking_config import RankingSettings

log = get_logger("tastebud.experiments")

FALLBACKS = metrics.counter(
    "experiment",
    "fallbacks",
    "total",
    "Requests that got no experiment or their experiment's control instead of their "
    "variant, by reason: book (the experiment definitions could not be read or assigned), "
    "model (the variant's model is not loaded yet or cannot load).",
    labels=("reason",),
)

# A source of the current book: a callable, or an object with a ``book`` attribute (the
# definitions store's watcher).
BookSource = Callable[[], ExperimentBook] | Any


class UnknownVariant(LookupError):
    """A forced ``(experiment, variant)`` that no running experiment has."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How to serve one request: what it is reported under (``experiment``, ``variant``),
    whether its exposure counts, and the ranking settings and snapshot to use (None: the
    configured ones, which precomputed lists match)."""

    experiment: str | None = None
    variant: str | None = None
    counted: bool = False
    ranking: RankingSettings | None = None
    snapshot: Snapshot | None = None


NO_PLAN = Plan()

# List ids from a generator of their own, as request ids (``tastebud.api.app``): uuid4 reads
# os.urandom, a system call that hands the GIL over on every request.
_list_ids = random.Random()
os.register_at_fork(after_in_child=_list_ids.seed)


def new_list_id() -> str:
    return str(uuid.UUID(int=_list_ids.getrandbits(128), version=4))


class ExperimentServing:
    def __init__(
        self,
        configured: RankingSettings,
        variants: VariantModels,
        *,
        source: BookSource | None = None,
        exposures: ExposureLog | None = None,
        enabled: bool = True,
    ) -> None:
        self.configured = configured
        self.variants = variants
        self.exposures = exposures
        self.enabled = enabled
        self._empty = ExperimentBook([], configured)
        self._source: Callable[[], ExperimentBook] = lambda: self._empty
        self._same: dict[int, tuple[RankingSettings, bool]] = {}
        if source is not None:
            self.use(source)

    def use(self, source: BookSource) -> None:
        """Assign from ``source`` from now on (a callable or an object with ``.book``)."""
        self._source = source if callable(source) else (lambda: source.book)
        self._same.clear()

    def plan(
        self, unit_id: str | None, current: Snapshot, forced: tuple[str, str] | None = None
    ) -> Plan:
        """The request's plan (``NO_PLAN``: no experiment). Raises UnknownVariant for a
        ``forced`` pair no running experiment has; never for a failing book."""
        if not self.enabled or (unit_id is None and forced is None):
            return NO_PLAN
        try:
            book = self._source()
            if not book.running:
                if forced is not None:
                    raise UnknownVariant(*forced)
                return NO_PLAN
            assignment = book.assign(unit_id or "", forced=forced)
        except UnknownVariant:
            raise
        except Exception as error:  # the store or the book: users get control, counted
            FALLBACKS.labels(reason="book").inc()
            log.warning("experiment_book_failed", error=f"{type(error).__name__}: {error}")
            return NO_PLAN
        if assignment is None:
            if forced is not None:
                raise UnknownVariant(*forced)
            return NO_PLAN
        return self._resolve(book, assignment, current)

    def _resolve(self, book: ExperimentBook, assignment: Assignment, current: Snapshot) -> Plan:
        snapshot: Snapshot | None = None
        ranking, model, variant = assignment.ranking, assignment.model, assignment.variant
        counted = assignment.counted
        if model is not None:
            snapshot = self.variants.snapshot_for(model, current)
            if snapshot is None:  # control's model, reported as control, not counted
                FALLBACKS.labels(reason="model").inc()
                ranking, snapshot, variant = self._control(book, assignment.experiment, current)
                counted = False
        return Plan(
            assignment.experiment,
            variant,
            counted,
            None if self._configured(ranking) else ranking,
            None if snapshot is current else snapshot,
        )

    def _control(
        self, book: ExperimentBook, key: str, current: Snapshot
    ) -> tuple[RankingSettings, Snapshot | None, str]:
        entry = next(e for e in book.running if e.experiment.key == key)
        control = entry.experiment.control
        snapshot = None
        if control.model is not None:
            snapshot = self.variants.snapshot_for(control.model, current)
        return entry.rankings[0], snapshot, control.name

    def _configured(self, ranking: RankingSettings) -> bool:
        """Whether ``ranking`` equals the configured settings (remembered per object: a
        book's settings objects live as long as the book)."""
        if ranking is self.configured:
            return True
        known = self._same.get(id(ranking))
        if known is not None and known[0] is ranking:
            return known[1]
        same = ranking == self.configured
        if len(self._same) >= 256:
            self._same.clear()
        self._same[id(ranking)] = (ranking, same)
        return same

    def expose(
        self,
        plan: Plan,
        *,
        user_id: str | None,
        session_id: str | None,
        items: Sequence[str],
        model_version: str | None,
        latency_ms: float,
        degraded: bool,
    ) -> str:
        """A new list id, and the list's exposure queued for the log (when one is open)."""
        list_id = new_list_id()
        if self.exposures is not None:
            self.exposures.append(
                Exposure(
                    list_id=list_id,
                    served_at=datetime.now(UTC),
                    experiment=plan.experiment if plan.counted else None,
                    variant=plan.variant if plan.counted else None,
                    user_id=user_id,
                    session_id=session_id,
                    items=tuple(items),
                    model_version=model_version,
                    latency_ms=latency_ms,
                    degraded=degraded,
                )
            )
        return list_id
