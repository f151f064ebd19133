"""An experiment analysed from what the stores hold: its definition from the experiment
store, exposures from the exposure log, events from the event store, creators and the active
catalog's size from the catalog. What ``tastebud experiments analyze``, ``GET
/v1/experiments/{key}/analysis`` and the ``guardrails`` job share, so all three read the same
data the same way (``metrics.experiment_data`` then ``analysis.analyze``).

Nothing to analyse is an answer, not a failure: an experiment with no counted exposure, or
data the analysis cannot judge, raises ``NothingToAnalyze`` (``code`` says which); the entry
points turn it into a 409 / exit 2 with the message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tastebud.config import Settings
from tastebud.experiments import sources
from tastebud.experiments.analysis import Analysis, AnalysisError, analyze
from tastebud.experiments.definition import Experiment
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.experiments.metrics import NoExposures, experiment_data
from tastebud.experiments.samples import ExperimentData
from tastebud.experiments.store import ExperimentStore
from tastebud.stores import Stores

__all__ = ["NothingToAnalyze", "analyze_stored", "stored_data"]


class NothingToAnalyze(ValueError):
    """The experiment exists but its data cannot be analysed yet; the message says why and
    ``code`` names the case for the API (``no_exposures``, ``not_analyzable``)."""

    def __init__(self, message: str, code: str = "not_analyzable") -> None:
        super().__init__(message)
        self.code = code


def _needs(settings: Settings, metrics: Sequence[str] | None, aggregate: str) -> bool:
    """Whether any chosen metric counts ``aggregate`` (what decides the catalog reads)."""
    specs = settings.experiments.metrics
    chosen = specs.values() if metrics is None else [specs[m] for m in metrics if m in specs]
    return any(
        measure is not None and measure.aggregate == aggregate
        for spec in chosen
        for measure in (spec.numerator, spec.denominator)
    )


def _creators(stores: Stores) -> dict[str, str]:
    """Every catalog item's creator (intra-list diversity); items without one are left out."""
    return {item.item_id: item.creator for item in stores.catalog.iter_items() if item.creator}


def stored_data(
    settings: Settings,
    stores: Stores,
    experiment: Experiment,
    *,
    now: datetime | None = None,
    metrics: Sequence[str] | None = None,
    exposures: ExposureLog | None = None,
) -> ExperimentData:
    """The per-user samples of ``metrics`` (default: every configured one) as of ``now``.
    ``exposures``: a log already open (the app's); otherwise one is opened beside
    ``stores.database`` for the read and closed. Raises the metrics' ``NoExposures``."""
    moment = now or datetime.now(UTC)
    log = exposures or open_exposure_log(settings, stores.database)
    try:
        catalog_size = (
            stores.catalog.count_items(active=True)
            if _needs(settings, metrics, "distinct_items")
            else 0
        )
        creators = _creators(stores) if _needs(settings, metrics, "diversity") else None

        def events(since: datetime, until: datetime) -> sources.Source:
            return sources.events_reader(stores.events, since, until)

        def served(since: datetime, until: datetime) -> sources.Source:
            # The Parquet log's files, read a row group at a time, rather than ``scan``'s
            # whole table in memory (10M exposures are gigabytes); PostgreSQL's table scans.
            files = getattr(log, "files", None)
            found = files(since, until) if files is not None else []
            return [str(path) for path in found] if found else log.scan(since, until)

        return experiment_data(
            experiment,
            settings,
            events,
            served,
            catalog_size=catalog_size,
            now=moment,
            creators=creators,
            metrics=metrics,
        )
    finally:
        if exposures is None:
            log.close()


def analyze_stored(
    settings: Settings,
    stores: Stores,
    experiment_store: ExperimentStore,
    key: str,
    *,
    now: datetime | None = None,
    metrics: Sequence[str] | None = None,
    exposures: ExposureLog | None = None,
) -> Analysis:
    """The whole analysis of ``key`` as of ``now``. Raises ``ExperimentNotFound`` for an
    unknown key and ``NothingToAnalyze`` when there is nothing to analyse yet."""
    experiment = experiment_store.require(key).experiment
    try:
        data = stored_data(
            settings, stores, experiment, now=now, metrics=metrics, exposures=exposures
        )
        return analyze(experiment, data, settings.experiments)
    except NoExposures as error:
        raise NothingToAnalyze(
            f"{error}: nothing to analyze yet (is it running, and are its lists served?)",
            code="no_exposures",
        ) from None
    except AnalysisError as error:
        raise NothingToAnalyze(f"experiment {key!r} cannot be analyzed yet: {error}") from None
