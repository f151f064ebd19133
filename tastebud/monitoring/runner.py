"""Run every monitoring check once on the production version: its training-time baseline
(once per version), the offline evaluation of the most recent days, the score drift, the
lists, its age, the new data since its training and the data drift, each judged by its
retraining trigger. ``run_monitor`` is what the ``monitor`` and ``retrain`` jobs, the CLI
and the tests call."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tastebud.config import RetrainingTriggers, Settings
from tastebud.monitoring import offline
from tastebud.monitoring.offline import CannotJudge, Production, Waiting
from tastebud.monitoring.online import online_check
from tastebud.monitoring.results import MonitorCheck, MonitorReport, MonitorResultStore
from tastebud.monitoring.triggers import TRIGGERS, triggers_from
from tastebud.observability import get_logger, metrics
from tastebud.quality.rules import SEVERITY
from tastebud.quality.runner import open_results as open_quality
from tastebud.quality.stats import psi

if TYPE_CHECKING:
    import pyarrow as pa

    from tastebud.stores import Stores

log = get_logger(__name__)
CHECKS = ("offline", "lists", "scores", "age", "new_data", "data_drift", "online")
Baseline = tuple[dict[str, Any], dict[str, Any]] | str  # (metrics, details), or why none


def open_results(stores: Stores) -> MonitorResultStore:
    """The result history on the stores' database (the caller closes it)."""
    return MonitorResultStore(stores.database.sql_backend("monitoring"))


def judged(
    check: str, metrics: dict[str, float | None], rules: RetrainingTriggers, message: str,
    **details: Any,
) -> MonitorCheck:  # fmt: skip
    """``fail`` when a rule of this check is on and its metric is past it, ``error`` when
    that metric could not be measured, else ``pass``."""
    status, fired = "pass", []
    trigger = None
    for rule, (owner, metric) in TRIGGERS.items():
        limit = getattr(rules, rule)
        if owner != check or limit is None:
            continue
        trigger = trigger or rule
        value = metrics.get(metric)
        if value is None or math.isnan(value):
            status = "error" if status == "pass" else status
        elif value > limit:
            status, trigger = "fail", rule
            fired.append(f"{metric} {value:.4g} > {limit:g}")
    if fired:
        message = f"{message}; trigger {', '.join(fired)}"
    return MonitorCheck(check, status, message, metrics, details, trigger)  # type: ignore[arg-type]


def cannot_run(
    check: str, reason: str, rules: RetrainingTriggers, *, waiting: bool = False
) -> MonitorCheck:
    """An ``error``: the check could not run. ``waiting``: only because too little time has
    passed since the training data ended (recorded, not alerted: it clears by itself)."""
    trigger = next(
        (
            rule
            for rule, (owner, _) in TRIGGERS.items()
            if owner == check and getattr(rules, rule) is not None
        ),
        None,
    )
    details = {"waiting": True} if waiting else {}
    return MonitorCheck(
        check, "error", f"could not run: {reason}", details=details, trigger=trigger
    )


def run_monitor(
    stores: Stores,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    results: MonitorResultStore | None = None,
) -> MonitorReport:
    """Every check as of ``as_of`` (default now). The triggers are loaded first, so a bad
    rules file refuses the run (``RulesError``) before anything is read."""
    rules = triggers_from(settings.monitoring)
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    started, checked_at = time.perf_counter(), datetime.now(UTC)
    try:
        production = offline.load_production(stores, settings)
    except Exception as error:  # no production model, an unreadable registry or model
        reason = f"no production model to monitor ({type(error).__name__}: {error})"
        log.warning("monitoring.no_model", error=str(error))
        version, found = "none", [cannot_run(check, reason, rules) for check in CHECKS]
    else:
        version, found = (
            production.version,
            _checks(stores, settings, rules, production, as_of, results),
        )
    report = MonitorReport(
        uuid.uuid4().hex[:16], version, as_of, checked_at, found, time.perf_counter() - started
    )
    if results is not None:
        results.record(report)
    export_metrics(report)
    log.info("monitoring.checked", version=version, status=report.status, summary=report.summary())
    return report


def _checks(
    stores: Stores,
    settings: Settings,
    rules: RetrainingTriggers,
    production: Production,
    as_of: datetime,
    results: MonitorResultStore | None,
) -> list[MonitorCheck]:
    found: list[MonitorCheck] = []
    baseline = _baseline(stores, settings, production, results, found)
    window = timedelta(days=settings.monitoring.eval_days)
    start = max(as_of - window, production.end)
    recent: pa.Table | None = None
    steps: dict[str, Callable[[], MonitorCheck]] = {
        "offline": lambda: _offline(rules, baseline, evaluation, settings.monitoring.ndcg_min_z),
        "lists": lambda: judged("lists", _lists(evaluation), rules, "the lists of the recent days"),
        "scores": lambda: _scores(settings, rules, production, recent, baseline),
        "age": lambda: _age(rules, production, as_of),
        "new_data": lambda: _new_data(stores, rules, production, as_of),
        "data_drift": lambda: _data_drift(stores, rules),
        "online": lambda: online_check(stores, settings, production.version, as_of),
    }
    evaluation: dict[str, float] | CannotJudge
    try:
        if start >= as_of:
            raise Waiting(f"no time since the training data ended ({production.end.isoformat()})")
        recent = offline.read_window(stores, start, as_of)
        if as_of - production.end < window:  # judged on a full window only, as the baseline is
            hours = (as_of - production.end).total_seconds() / 3600
            raise Waiting(
                f"waiting: {hours:.1f} h of events since the training data ended, the "
                f"evaluation judges {window.total_seconds() / 3600:g} h ([monitoring] eval_days)"
            )
        evaluation = offline.judge_lists(production.model, recent, settings)
    except CannotJudge as error:
        evaluation = error
    except Exception as error:
        evaluation = CannotJudge(f"{type(error).__name__}: {error}")
    for name, step in steps.items():
        try:
            found.append(step())
        except Exception as error:  # one check's bug or outage must not hide the others
            log.warning("monitoring.check_failed", check=name, error=str(error))
            reason = (
                str(error) if isinstance(error, CannotJudge) else f"{type(error).__name__}: {error}"
            )
            found.append(cannot_run(name, reason, rules, waiting=isinstance(error, Waiting)))
    return found


def _baseline(
    stores: Stores,
    settings: Settings,
    production: Production,
    results: MonitorResultStore | None,
    found: list[MonitorCheck],
) -> Baseline:
    """The version's baseline from the history, or computed now (and reported as the
    ``baseline`` check, so it is recorded once)."""
    stored = results.baseline(production.version) if results is not None else None
    if stored is not None:
        return stored.metrics, stored.details
    try:
        metrics, details = offline.training_baseline(stores, settings, production)
    except Exception as error:
        reason = (
            str(error) if isinstance(error, CannotJudge) else f"{type(error).__name__}: {error}"
        )
        found.append(MonitorCheck("baseline", "error", f"could not run: {reason}"))
        return reason
    found.append(
        MonitorCheck(
            "baseline", "pass", "the version's figures at training time", dict(metrics), details
        )
    )
    return dict(metrics), details


def _offline(
    rules: RetrainingTriggers,
    baseline: Baseline,
    evaluation: dict[str, float] | CannotJudge,
    min_z: float,
) -> MonitorCheck:
    if isinstance(evaluation, CannotJudge):
        raise evaluation
    if isinstance(baseline, str):
        raise CannotJudge(f"no training-time baseline ({baseline})")
    before = float(baseline[0]["ndcg@10"])
    now = evaluation["ndcg@10"]
    drop = (before - now) / before if before > 0 else math.nan
    spread = math.hypot(float(baseline[0].get("ndcg@10.se", 0.0)), evaluation["ndcg@10.se"])
    z = (before - now) / spread if spread > 0 else (math.inf if before > now else 0.0)
    metrics = {
        "offline.ndcg@10": now,
        "offline.recall@20": evaluation["recall@20"],
        "offline.coverage@10": evaluation["coverage@10"],
        "offline.ndcg@10.baseline": before,
        "offline.recall@20.baseline": baseline[0].get("recall@20"),
        "offline.ndcg@10.drop": drop,
        "offline.ndcg@10.z": z if math.isfinite(z) else None,
        # The trigger's figure: the drop, when chance alone would rarely make one this big.
        "offline.ndcg@10.significant_drop": drop if z > min_z or math.isnan(drop) else 0.0,
    }
    message = f"NDCG@10 {now:.4f} on the recent days against {before:.4f} at training time"
    return judged("offline", metrics, rules, message, users=evaluation["users"])


def _lists(evaluation: dict[str, float] | CannotJudge) -> dict[str, float | None]:
    if isinstance(evaluation, CannotJudge):
        raise evaluation
    names = ("coverage@10", "ild@10", "personalization@10", "gini@10")
    return {f"lists.{name}": evaluation[name] for name in names}


def _scores(
    settings: Settings,
    rules: RetrainingTriggers,
    production: Production,
    recent: pa.Table | None,
    baseline: Baseline,
) -> MonitorCheck:
    if isinstance(baseline, str):
        raise CannotJudge(f"no training-time score distribution ({baseline})")
    if recent is None:
        raise Waiting("no events since the training data ended to score")
    scores = offline.score_sample(production.model, recent, settings)
    if len(scores) == 0:
        raise CannotJudge("no recent user the model knows")
    details = baseline[1]
    current = offline.histogram(scores, details["score_edges"])
    value = psi(details["score_counts"], current)
    metrics = {
        "scores.psi": value,
        "scores.mean": float(scores.mean()),
        "scores.mean.baseline": details["score_mean"],
    }
    return judged(
        "scores",
        metrics,
        rules,
        f"PSI {value:.4f} of the top-10 scores against training time",
        counts=current,
    )


def _age(rules: RetrainingTriggers, production: Production, as_of: datetime) -> MonitorCheck:
    hours = (as_of - production.end).total_seconds() / 3600
    message = f"version {production.version}'s data ended {hours:.1f} h before"
    return judged("age", {"model.age_hours": hours}, rules, message)


def _new_data(
    stores: Stores, rules: RetrainingTriggers, production: Production, as_of: datetime
) -> MonitorCheck:
    events, items = offline.new_data(stores, production, as_of)
    metrics = {"new_data.events": float(events), "new_data.items": float(items)}
    return judged(
        "new_data", metrics, rules, f"{events} events and {items} unknown items since training"
    )


def _data_drift(stores: Stores, rules: RetrainingTriggers) -> MonitorCheck:
    """The largest PSI of the latest data-quality drift check (``tastebud.quality``)."""
    with open_quality(stores) as quality:
        rows = quality.history(check="drift", limit=1)
    if not rows:
        raise CannotJudge("no data-quality drift check recorded yet (the quality job)")
    row = rows[0]
    values = [entry.get("value") for name, entry in row.metrics.items() if name.endswith(".psi")]
    measured = [float(value) for value in values if value is not None]
    if row.status == "error" or not measured:
        raise CannotJudge(f"the latest drift check could not run ({row.message})")
    largest = max(measured)
    return judged(
        "data_drift", {"data_drift.psi": largest}, rules,
        f"largest data drift PSI {largest:.4f} (quality run {row.run_id})",
        quality_run=row.run_id, quality_as_of=row.as_of.isoformat(),
    )  # fmt: skip


def export_metrics(report: MonitorReport) -> None:
    """The latest value of every metric and status, and which triggers fire, as gauges."""
    values = metrics.gauge(
        "monitoring", "metric", "value", "Latest value of each model-monitoring metric.",
        ["model_version", "metric"],
    )  # fmt: skip
    statuses = metrics.gauge(
        "monitoring", "check", "status",
        "Latest status of each monitoring check: 0 pass, 1 warn, 2 error, 3 fail (trigger fires).",
        ["check"],
    )  # fmt: skip
    firing = metrics.gauge(
        "monitoring", "trigger", "firing", "1 while a retraining trigger fires.", ["trigger"]
    )
    runs = metrics.counter(
        "monitoring", "runs", "total", "Monitoring runs, by overall status.", ["status"]
    )
    for check in report.checks:
        statuses.labels(check.check).set(SEVERITY[check.status])
        for name, value in check.metrics.items():
            if name.count(".") >= 1 and value is not None:
                values.labels(report.model_version, name).set(value)
    fired = {check.trigger for check in report.firing}
    for rule in TRIGGERS:
        firing.labels(rule).set(1 if rule in fired else 0)
    runs.labels(report.status).inc()
