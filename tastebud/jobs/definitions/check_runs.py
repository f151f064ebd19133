"""What the ``quality`` and ``monitor`` jobs share: run a set of checks, record them in
their result history, and alert once for each check that newly turns ``fail`` or ``error``
(the job alert hook: an error log line, and the webhook of ``[jobs] alert_webhook_url``),
not again while it stays so. Each job names its checks, its alert payload and which checks
may alert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tastebud.jobs.alerts import AlertHook
from tastebud.jobs.base import JobContext, JobError
from tastebud.quality.rules import RulesError
from tastebud.stores import Stores


class Report(Protocol):
    """A run's report: its checks, each with a name (``check``) and a ``status``."""

    @property
    def checks(self) -> list[Any]: ...


R = TypeVar("R", bound=Report)


def run_and_alert(
    context: JobContext,
    open_results: Callable[[Stores], Any],
    run: Callable[[Any], R],
    payload: Callable[[R, Any], dict[str, Any]],
    log: Any,
    message: str,
    may_alert: Callable[[Any], bool] = lambda check: True,
) -> tuple[R, list[str]]:
    """``run(results)`` with the result history open, then alert (``payload``, logged as
    ``message`` on ``log``) each check that ``may_alert`` and whose failing status is new.
    Returns the report and the names of the checks alerted."""
    results = open_results(context.stores)
    try:
        before = {row.check: row.status for row in results.latest()}
        report = run(results)
    except RulesError as error:
        raise JobError(str(error)) from None
    finally:
        results.close()
    alerted = [
        check
        for check in report.checks
        if may_alert(check)
        and check.status in ("fail", "error")
        and before.get(check.check) != check.status
    ]
    hook = AlertHook(context.settings.jobs.alert_webhook_url)
    for check in alerted:
        document = payload(report, check)
        log.error(message, **document)
        hook.send(document)
    return report, [check.check for check in alerted]
