"""``quality``: the data-quality checks on a schedule, as of the interval's end, recorded in
the result history (``tastebud quality history``, ``GET /v1/quality``) and exported as
metrics. The train job runs the same checks as its gate (``gate_training``)."""

from __future__ import annotations

from typing import Any

from tastebud.jobs.base import InsufficientData, JobContext, JobError
from tastebud.quality.results import QualityReport
from tastebud.quality.rules import RulesError
from tastebud.quality.runner import open_results, run_checks


def checked(context: JobContext) -> QualityReport:
    """Run and record the checks as of the job's interval end."""
    results = open_results(context.stores)
    try:
        return run_checks(
            context.stores,
            context.settings,
            as_of=context.end,
            results=results,
            check=context.check,
        )
    except RulesError as error:
        raise JobError(str(error)) from None
    finally:
        results.close()


def outcome(report: QualityReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "status": report.status,
        "checks": {check.check: check.status for check in report.checks},
        "blocking": [check.check for check in report.blocking],
    }


def run(context: JobContext) -> dict[str, Any]:
    return outcome(checked(context))


def gate_training(context: JobContext, production: str | None) -> dict[str, Any]:
    """The train job's gate: a failed critical check refuses the run (nothing is trained or
    promoted; ``production`` keeps serving), naming the checks and what they found."""
    report = checked(context)
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
