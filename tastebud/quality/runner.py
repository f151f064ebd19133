"""Run every check once: one scan of the window, the reference, the checks, the history
and the metrics. ``run_checks`` is what the ``quality`` job, the ``train`` job's gate, the
CLI and the tests call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tastebud.config import QUALITY_CHECKS, Settings
from tastebud.observability import get_logger, metrics
from tastebud.quality import checks, model_checks
from tastebud.quality.reference import (
    NoReference,
    Reference,
    production_manifest,
    production_reference,
)
from tastebud.quality.results import CheckResult, QualityReport, QualityResultStore
from tastebud.quality.rules import SEVERITY, Rules
from tastebud.quality.scan import Bounds, Scan, micros, scan
from tastebud.quality.schema import SchemaTally, check_table, event_schema

if TYPE_CHECKING:
    from tastebud.registry import ModelVersion
    from tastebud.stores import Stores

log = get_logger(__name__)
STATUS_CODES = SEVERITY  # the status gauge's value: 0 pass, 1 warn, 2 error, 3 fail


def bounds_for(settings: Settings, as_of: datetime) -> Bounds:
    quality = settings.quality
    end = micros(as_of)
    window = end - int(quality.window_hours * 3600e6)
    baseline = window - quality.volume_baseline_days * 86_400_000_000
    first = min(baseline, end - int(quality.freshness_lookback_hours * 3600e6))
    return Bounds(first, baseline, window, end)


def open_results(stores: Stores) -> QualityResultStore:
    """The result history on the stores' database (the caller closes it)."""
    return QualityResultStore(stores.database.sql_backend("quality"))


def run_checks(
    stores: Stores,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    results: QualityResultStore | None = None,
    check: Callable[[], None] | None = None,
) -> QualityReport:
    """Every check as of ``as_of`` (default now). Rules are loaded first, so a bad rules
    file refuses the run (``RulesError``) before anything is read. ``results``: where the
    report is recorded; ``check``: a cancellation check called between stages."""
    rules = Rules.from_settings(settings.quality)
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    started, checked_at = time.perf_counter(), datetime.now(UTC)
    tally = SchemaTally()
    schema = event_schema(settings, as_of)
    found: list[CheckResult] = []
    try:
        window = scan(
            stores.events,
            bounds_for(settings, as_of),
            lambda table: check_table(table, schema, settings, tally),
        )
    except Exception as error:  # a store outage: every check reports it, none passes
        log.warning("quality.scan_failed", error=str(error))
        reason = f"the event store could not be read ({type(error).__name__}: {error})"
        found = [checks.failed_to_run(settings.quality, name, reason) for name in QUALITY_CHECKS]
    else:
        if check is not None:
            check()
        found = _judge(stores, settings, rules, as_of, window, tally)
    report = QualityReport(
        run_id=uuid.uuid4().hex[:16],
        as_of=as_of,
        checked_at=checked_at,
        checks=found,
        duration_seconds=time.perf_counter() - started,
    )
    if results is not None:
        results.record(report)
    export_metrics(report)
    log.info("quality.checked", status=report.status, summary=report.summary())
    return report


def _judge(
    stores: Stores,
    settings: Settings,
    rules: Rules,
    as_of: datetime,
    window: Scan,
    tally: SchemaTally,
) -> list[CheckResult]:
    inputs = checks.Inputs(settings.quality, rules, as_of, window)
    manifest, reference = _production(stores, settings)

    def known_items(ids: list[str]) -> set[str]:
        return set(stores.catalog.get_items(ids))

    has_catalog = stores.catalog.count_items() > 0
    steps: dict[str, Callable[[], CheckResult]] = {
        "schema": lambda: checks.check_schema(inputs, tally),
        "freshness": lambda: checks.check_freshness(inputs),
        "completeness": lambda: checks.check_completeness(
            inputs, known_items if has_catalog else None
        ),
        "volume": lambda: checks.check_volume(inputs),
        "drift": lambda: _with_reference(inputs, "drift", reference, model_checks.check_drift),
        "cold_start": lambda: _with_reference(
            inputs, "cold_start", reference, model_checks.check_cold_start
        ),
        "staleness": lambda: (
            checks.failed_to_run(inputs, "staleness", manifest)
            if isinstance(manifest, str)
            else model_checks.check_staleness(inputs, manifest)
        ),
    }
    found = []
    for name, step in steps.items():
        try:
            found.append(step())
        except Exception as error:  # one check's bug or outage must not hide the others
            log.warning("quality.check_failed", check=name, error=str(error))
            found.append(checks.failed_to_run(inputs, name, f"{type(error).__name__}: {error}"))
    return found


def _production(stores: Stores, settings: Settings) -> tuple[ModelVersion | str, Reference | str]:
    """The production manifest and its reference, each or the reason it is missing."""
    manifest: ModelVersion | str
    try:
        manifest = production_manifest(stores, settings)
    except NoReference as error:
        return str(error), str(error)
    except Exception as error:
        reason = f"the model registry could not be read ({type(error).__name__}: {error})"
        return reason, reason
    try:
        return manifest, production_reference(stores, settings, manifest)
    except NoReference as error:
        return manifest, str(error)
    except Exception as error:
        return (
            manifest,
            f"the training snapshot could not be read ({type(error).__name__}: {error})",
        )


def _with_reference(
    inputs: checks.Inputs,
    name: str,
    reference: Reference | str,
    run: Callable[[checks.Inputs, Reference], CheckResult],
) -> CheckResult:
    if isinstance(reference, str):
        return checks.failed_to_run(inputs, name, reference)
    return run(inputs, reference)


def export_metrics(report: QualityReport) -> None:
    """The latest value of every metric and status, as Prometheus gauges."""
    values = metrics.gauge(
        "quality", "metric", "value", "Latest value of each data-quality metric.", ["metric"]
    )
    statuses = metrics.gauge(
        "quality",
        "check",
        "status",
        "Latest status of each data-quality check: 0 pass, 1 warn, 2 error, 3 fail.",
        ["check"],
    )
    runs = metrics.counter(
        "quality", "runs", "total", "Data-quality runs, by overall status.", ["status"]
    )
    for result in report.checks:
        statuses.labels(result.check).set(STATUS_CODES[result.status])
        for name, value in result.metrics.items():
            values.labels(name).set(float("nan") if value is None else value)
    runs.labels(report.status).inc()
