"""Run one job over one data interval: lock, attempts with timeout and retries, history,
metrics and the failure alert.

An attempt runs in a worker thread so the runner can stop waiting at the job's timeout.
Python cannot kill a thread, so an abandoned attempt is *cancelled* instead: its context
refuses every later publish (``JobContext.check``), which is what keeps a hung job from
overwriting newer outputs when it finally wakes up. Timeouts are not retried: whatever hung
is probably still hung, and the next scheduled run is the retry.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from structlog.contextvars import bound_contextvars

from tastebud.config import Settings
from tastebud.jobs.alerts import AlertHook
from tastebud.jobs.base import (
    InsufficientData,
    InvalidInterval,
    JobAlreadyRunning,
    JobCancelled,
    JobContext,
    JobDefinition,
    JobError,
    JobTimeout,
)
from tastebud.jobs.failures import failure_reason
from tastebud.jobs.history import RunHistory
from tastebud.jobs.roster import JobRegistry
from tastebud.observability import bind_context, get_logger, metrics
from tastebud.stores import Stores, open_stores
from tastebud.stores.retry import RetryPolicy, retrying

log = get_logger("tastebud.jobs")
# A run may end a little in the future of this machine's clock (a scheduler on another host).
FUTURE_TOLERANCE = timedelta(minutes=1)

EXECUTIONS = metrics.counter(
    "batch", "job_executions", "total", "Job attempts by outcome.", ["job_name", "status"]
)
DURATION = metrics.histogram(
    "batch",
    "job_duration",
    "seconds",
    "Wall time of job attempts.",
    ["job_name"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
FAILURES = metrics.counter(
    "batch", "job_failures", "total", "Failed job attempts by reason.", ["job_name", "reason"]
)
REFUSALS = metrics.counter(
    "batch",
    "job_refusals",
    "total",
    "Runs refused for too little data (the previous result kept), by reason.",
    ["job_name", "reason"],
)


class JobFailed(JobError):
    """Every attempt of a run failed; ``outcome`` holds what happened."""

    def __init__(self, message: str, outcome: RunOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass
class RunOutcome:
    run_id: str
    job_name: str
    start: datetime
    end: datetime
    status: str  # succeeded, failed, timeout, skipped, refused
    attempts: int
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobRunner:
    """Runs registered jobs. Stores are opened per run unless given (tests, the scheduler)."""

    def __init__(
        self,
        settings: Settings,
        registry: JobRegistry,
        history: RunHistory,
        *,
        stores: Stores | None = None,
        alerts: AlertHook | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.history = history
        self.stores = stores
        self.alerts = alerts or AlertHook(settings.jobs.alert_webhook_url)
        self.clock = clock
        self.sleep = sleep

    def resolve_interval(
        self,
        definition: JobDefinition,
        start: datetime | None,
        end: datetime | None,
        as_of: datetime | None = None,
    ) -> tuple[datetime, datetime]:
        """The interval to run: as given, or the schedule's newest complete one at ``as_of``
        (default: now); checked."""
        now = self.clock()
        for name, value in (("start", start), ("end", end), ("as-of", as_of)):
            if value is not None and value.tzinfo is None:
                raise InvalidInterval(f"--{name} must carry a timezone (e.g. 2025-01-01T00:00Z)")
        if as_of is not None and (start is not None or end is not None):
            raise InvalidInterval("--as-of picks the interval itself: give it or --start/--end")
        try:
            if start is None and end is None:
                start, end = definition.schedule.latest_interval(as_of or now)
            elif start is None:
                assert end is not None
                start, end = definition.schedule.interval_ending(end)
            elif end is None:
                raise InvalidInterval("--start needs --end (the interval is [start, end))")
        except ValueError as error:
            raise InvalidInterval(f"{definition.name}: {error}; pass --start and --end") from None
        assert start is not None and end is not None
        if start >= end:
            raise InvalidInterval(
                f"interval start {start.isoformat()} is not before its end {end.isoformat()}"
            )
        if end > now + FUTURE_TOLERANCE:
            raise InvalidInterval(
                f"interval end {end.isoformat()} is in the future (now {now.isoformat()}): "
                "its events have not arrived yet"
            )
        return start, end

    def policy(self, definition: JobDefinition) -> RetryPolicy:
        return definition.retry

    def timeout(self, definition: JobDefinition) -> float:
        return self.settings.jobs.timeout_seconds or definition.timeout_seconds

    def run(
        self,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        as_of: datetime | None = None,
        trigger: str = "manual",
        skip_if_succeeded: bool = False,
    ) -> RunOutcome:
        """Run ``name`` over [start, end) (or the schedule's latest interval at ``as_of``);
        raises JobFailed when every attempt failed. A run refused for too little data
        returns its outcome with status ``refused``."""
        definition = self.registry.runnable(name)
        start, end = self.resolve_interval(definition, start, end, as_of)
        run_id = uuid.uuid4().hex[:16]
        try:
            with bound_contextvars(job_name=name, run_id=run_id), self.history.lock(f"job:{name}"):
                if skip_if_succeeded and self.history.succeeded(name, start, end):
                    return RunOutcome(run_id, name, start, end, "skipped", 0)
                return self._attempts(definition, run_id, start, end, trigger)
        except JobAlreadyRunning as error:
            self._record_refusal(name, run_id, start, end, trigger, error)
            raise

    def _record_refusal(
        self,
        name: str,
        run_id: str,
        start: datetime,
        end: datetime,
        trigger: str,
        error: JobAlreadyRunning,
    ) -> None:
        now = self.clock()
        attempt_id = self.history.start_attempt(
            run_id=run_id,
            job_name=name,
            start=start,
            end=end,
            attempt=0,
            trigger=trigger,
            started_at=now,
        )
        self.history.finish_attempt(
            attempt_id,
            status="skipped",
            finished_at=now,
            duration_seconds=0.0,
            error=str(error),
            error_kind="already_running",
        )
        EXECUTIONS.labels(job_name=name, status="skipped").inc()
        log.warning("job already running", job=name, error=str(error))

    def _attempts(
        self, definition: JobDefinition, run_id: str, start: datetime, end: datetime, trigger: str
    ) -> RunOutcome:
        policy = self.policy(definition)
        stores = self.stores
        owned = None
        if stores is None:
            stores = owned = open_stores(self.settings)
        attempts: list[tuple[RunOutcome, BaseException | None]] = []

        def attempt() -> RunOutcome:
            outcome, error = self._attempt(
                definition, stores, run_id, start, end, len(attempts) + 1, trigger
            )
            attempts.append((outcome, error))
            if error is None or isinstance(error, InsufficientData):
                return outcome
            raise error

        def on_retry(number: int, error: BaseException | None, delay: float) -> None:
            log.warning(
                "job attempt failed; retrying",
                job=definition.name,
                attempt=number,
                delay_seconds=round(delay, 3),
                error=str(error),
            )

        try:
            try:
                return retrying(policy, sleep=self.sleep, on_retry=on_retry)(attempt)
            except BaseException as raised:
                if not attempts or raised is not attempts[-1][1]:
                    raise  # not an attempt's error: the runner's own
                outcome, error = attempts[-1]
                self.alerts.job_failed(definition.name, run_id, start, end, len(attempts), error)
                raise JobFailed(
                    f"{definition.name} failed after {len(attempts)} attempt(s): {error}", outcome
                ) from error
        finally:
            if owned is not None:
                owned.close()

    def _attempt(
        self,
        definition: JobDefinition,
        stores: Stores,
        run_id: str,
        start: datetime,
        end: datetime,
        attempt: int,
        trigger: str,
    ) -> tuple[RunOutcome, BaseException | None]:
        name = definition.name
        timeout = self.timeout(definition)
        attempt_id = self.history.start_attempt(
            run_id=run_id,
            job_name=name,
            start=start,
            end=end,
            attempt=attempt,
            trigger=trigger,
            started_at=self.clock(),
        )
        data_version = _data_version(stores)
        clock_start = time.monotonic()
        context = JobContext(
            job_name=name,
            run_id=run_id,
            attempt=attempt,
            start=start,
            end=end,
            settings=self.settings,
            stores=stores,
            deadline=clock_start + timeout,
        )
        output, error = _run_in_worker(definition, context, timeout)
        duration = time.monotonic() - clock_start
        status = _status(error)
        if isinstance(error, InsufficientData):
            # What the scheduler compares before running a refused job again.
            output = {**error.details, "data_version": data_version}
        self._record(attempt_id, context, status, duration, error, output)
        outcome = RunOutcome(
            run_id,
            name,
            start,
            end,
            status,
            attempt,
            output or {},
            None if error is None else str(error),
        )
        return outcome, error

    def _record(
        self,
        attempt_id: int,
        context: JobContext,
        status: str,
        duration: float,
        error: BaseException | None,
        output: dict[str, Any] | None,
    ) -> None:
        """Close the attempt's history row, count it in the metrics and log it."""
        name = context.job_name
        self.history.finish_attempt(
            attempt_id,
            status=status,
            finished_at=self.clock(),
            duration_seconds=round(duration, 6),
            error=None if error is None else f"{type(error).__name__}: {error}",
            error_kind=None if error is None else failure_reason(error),
            output=output,
        )
        EXECUTIONS.labels(job_name=name, status=status).inc()
        DURATION.labels(job_name=name).observe(duration)
        if isinstance(error, InsufficientData):
            REFUSALS.labels(job_name=name, reason=error.reason).inc()
            log.warning("job refused", job=name, reason=error.reason, message=str(error))
        elif error is not None:
            FAILURES.labels(job_name=name, reason=failure_reason(error)).inc()
        log.info(
            "job attempt finished",
            job=name,
            attempt=context.attempt,
            status=status,
            seconds=round(duration, 3),
        )


def _run_in_worker(
    definition: JobDefinition, context: JobContext, timeout: float
) -> tuple[dict[str, Any] | None, BaseException | None]:
    """Run the job's function in a worker thread and wait up to ``timeout``: its output, or
    the error it raised. A worker still running then is abandoned, its context cancelled
    (see the module docstring), and the error is a ``JobTimeout``."""
    assert definition.func is not None
    job = definition.func
    result: dict[str, Any] = {}

    def work() -> None:
        bind_context(job_name=context.job_name, run_id=context.run_id, attempt=context.attempt)
        try:
            result["output"] = job(context) or {}
        except BaseException as error:  # reported to the runner thread, not swallowed
            result["error"] = error

    name, attempt = context.job_name, context.attempt
    worker = threading.Thread(target=work, name=f"job-{name}-{attempt}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        context.cancelled.set()
        return None, JobTimeout(f"{name} attempt {attempt} exceeded its {timeout:g} s timeout")
    error: BaseException | None = result.get("error")
    return (result.get("output") if error is None else None), error


def _status(error: BaseException | None) -> str:
    """The history status of an attempt that ended with ``error`` (None: it succeeded)."""
    if error is None:
        return "succeeded"
    if isinstance(error, InsufficientData):
        return "refused"
    if isinstance(error, JobTimeout | JobCancelled):
        return "timeout"
    return "failed"


def _data_version(stores: Stores) -> int | None:
    """The event store's log position: a refused run records it, and the scheduler runs a
    refused job again only once it has moved (new data arrived)."""
    try:
        return stores.events.last_seq()
    except Exception as error:  # the job itself will meet (and report) a broken store
        log.warning("event store position unreadable", error=f"{type(error).__name__}: {error}")
        return None
