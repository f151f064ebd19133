"""``quality``: the data-quality checks on a schedule, as of the interval's end, recorded in
the result history (``tastebud quality history``, ``GET /v1/quality``) and exported as
metrics. A check that turns ``fail`` or ``error`` alerts once (the job alert hook: an error
log line, and the webhook of ``[jobs] alert_webhook_url``), not again while it stays so.
The train job runs the same checks as its gate (``gate_training``): recorded, not alerted
(its refusal, in the job's history, is the signal)."""

from __future__ import annotations

from typing import Any

from tastebud.jobs.base import InsufficientData, JobContext
from tastebud.jobs.definitions.check_runs import run_and_alert
from tastebud.observability import get_logger
from tastebud.quality.results import CheckResult, QualityReport, QualityResultStore
from tastebud.quality.runner import open_results, run_checks

log = get_logger(__name__)


def checked(context: JobContext, *, alert: bool = True) -> tuple[QualityReport, list[str]]:
    """Run and record the checks as of the job's interval end; with ``alert``, alert the
    checks that newly failed or could not run. Returns the report and the checks alerted."""

    def run(results: QualityResultStore) -> QualityReport:
        return run_checks(
            context.stores,
            context.settings,
            as_of=context.end,
            results=results,
            check=context.check,
        )

    return run_and_alert(
        context, open_results, run, _payload, log, "quality check alert", lambda _: alert
    )


def _payload(report: QualityReport, check: CheckResult) -> dict[str, Any]:
    return {
        "alert": "quality_check",
        "check": check.check,
        "status": check.status,
        "critical": check.critical,
        "message": check.message,
        "run_id": report.run_id,
        "as_of": report.as_of.isoformat(),
    }


def outcome(report: QualityReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "status": report.status,
        "checks": {check.check: check.status for check in report.checks},
        "blocking": [check.check for check in report.blocking],
    }


def run(context: JobContext) -> dict[str, Any]:
    report, alerted = checked(context)
    return {**outcome(report), "alerted": alerted}


def gate_training(context: JobContext, production: str | None) -> dict[str, Any]:
    """The train job's gate: a failed critical check refuses the run (nothing is trained or
    promoted; ``production`` keeps serving), naming the checks and what they found."""
    report, _ = checked(context, alert=False)  # a refusal is the train job's own signal
    if report.blocking:
        found = "; ".join(f"{check.check}: {check.message}" for check in report.blocking)
        serving = (
            f"production model {production} keeps serving"
            if production
            else "no production model yet"
        )
        raise InsufficientData(
            f"training refused: critical data-quality checks failed ({found}); {serving}. "
            f"See `tastebud quality history --run {report.run_id}`; fix the data or the "
            "thresholds ([quality] in tastebud.toml) and run train again",
            reason="data_quality",
            details=outcome(report),
        )
    return outcome(report)
