"""``monitor`` and ``retrain``: model monitoring on a schedule, and the retraining triggers.

``monitor`` runs the checks (``tastebud.monitoring``) on the production version as of the
interval's end, records them (``tastebud monitor history``, ``GET /v1/monitoring``) and
alerts once a check newly fires its trigger or cannot run (an error log line and the webhook
of ``[jobs] alert_webhook_url``), not again while it stays so.

``retrain`` runs the same checks; when a trigger fires it runs the ``train`` job (AutoML and
the data-quality gate, which may still refuse the data) over the same interval end, with the
trigger named in the train run's history (``trigger`` = ``retrain:ndcg_drop,...``) and in its
own output. A cooldown (``[monitoring] cooldown_hours``, measured between interval ends)
keeps a flapping signal from training in a loop: a train run started by a trigger, whatever
became of it, holds the next one off until the cooldown has passed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tastebud.jobs.base import JobAlreadyRunning, JobContext
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.definitions.check_runs import run_and_alert
from tastebud.jobs.history_open import open_run_history
from tastebud.jobs.runner import JobFailed, JobRunner
from tastebud.monitoring.results import MonitorCheck, MonitorReport, MonitorResultStore
from tastebud.monitoring.runner import open_results, run_monitor
from tastebud.observability import get_logger

log = get_logger(__name__)
TRIGGER_PREFIX = "retrain:"


def monitored(context: JobContext) -> tuple[MonitorReport, list[str]]:
    """Run and record the checks as of the interval's end; alert the checks that newly
    fire or could not run. Returns the report and the checks alerted."""

    def run(results: MonitorResultStore) -> MonitorReport:
        return run_monitor(context.stores, context.settings, as_of=context.end, results=results)

    return run_and_alert(
        context,
        open_results,
        run,
        _payload,
        log,
        "model monitoring alert",
        lambda check: not check.details.get("waiting"),  # clears once the window is full
    )


def _payload(report: MonitorReport, check: MonitorCheck) -> dict[str, Any]:
    return {
        "alert": "model_monitoring",
        "check": check.check,
        "status": check.status,
        "trigger": check.trigger,
        "model_version": report.model_version,
        "message": check.message,
        "run_id": report.run_id,
        "as_of": report.as_of.isoformat(),
    }


def outcome(report: MonitorReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "model_version": report.model_version,
        "status": report.status,
        "checks": {check.check: check.status for check in report.checks},
        "firing": [check.trigger for check in report.firing],
    }


def run(context: JobContext) -> dict[str, Any]:
    report, alerted = monitored(context)
    return {**outcome(report), "alerted": alerted}


def retrain(context: JobContext) -> dict[str, Any]:
    """Train when a trigger fires and the cooldown has passed (the module docstring)."""
    report, _ = monitored(context)
    found: dict[str, Any] = outcome(report)
    firing = [check for check in report.firing if check.trigger]
    found["reasons"] = [check.message for check in firing]
    if not firing:
        return {**found, "trained": False}
    if not context.settings.monitoring.retrain:
        return {**found, "trained": False, "held": "[monitoring] retrain is off"}
    history = open_run_history(context.settings)
    try:
        cooldown = timedelta(hours=context.settings.monitoring.cooldown_hours)
        last = next(
            (
                run
                for run in history.list_runs(job_name="train", limit=200)
                if run.trigger.startswith(TRIGGER_PREFIX)
            ),
            None,
        )
        if last is not None and context.end - cooldown < last.interval_end <= context.end:
            until = (last.interval_end + cooldown).isoformat()
            log.info("retrain.cooldown", last_run=last.run_id, until=until)
            return {**found, "trained": False, "held": f"cooldown until {until}"}
        context.check()
        trigger = TRIGGER_PREFIX + ",".join(sorted({str(check.trigger) for check in firing}))
        runner = JobRunner(context.settings, build_registry(), history, stores=context.stores)
        try:
            trained = runner.run("train", end=context.end, trigger=trigger)
        except JobFailed as error:
            trained = error.outcome
        except JobAlreadyRunning:  # a scheduled or manual train is at it: that one counts
            return {**found, "trained": False, "held": "the train job is already running"}
    finally:
        history.close()
    log.warning(
        "retrain.triggered", trigger=trigger, train_run=trained.run_id, status=trained.status
    )
    return {
        **found,
        "trained": True,
        "train": {"run_id": trained.run_id, "status": trained.status, "output": trained.output},
    }
