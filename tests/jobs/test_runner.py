"""The runner: attempts, retries only for transient errors, timeouts that cannot publish
late, the lock against a second start, interval checks, history of every attempt, metrics
and the failure alert."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import job_fixtures
import pytest
from jobs.webhook import Webhook

from tastebud.config import Settings
from tastebud.jobs import (
    InvalidInterval,
    JobAlreadyRunning,
    JobContext,
    JobFailed,
    JobNotAvailable,
    JobRegistry,
    JobRunner,
    RetryPolicy,
    RunHistory,
    TransientJobError,
    UnknownJob,
)
from tastebud.jobs.alerts import AlertHook
from tastebud.jobs.outputs import publish_lists, read_published
from tastebud.observability import metrics
from tastebud.stores import Stores, StoreUnavailable

# The shared fixtures (a conftest.py here would clash with the other test folders').
history, settings, stores = job_fixtures.history, job_fixtures.settings, job_fixtures.stores

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=3, base_seconds=0.01, cap_seconds=0.05)
START, END = NOW - timedelta(hours=1), NOW - timedelta(minutes=5)


class Jobs:
    """Test jobs whose behaviour each test sets."""

    def __init__(self) -> None:
        self.calls: list[JobContext] = []
        self.failures: list[BaseException] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def flaky(self, context: JobContext) -> dict[str, Any]:
        self.calls.append(context)
        if self.failures:
            raise self.failures.pop(0)
        return {"interval": [context.start.isoformat(), context.end.isoformat()]}

    def hang_then_publish(self, context: JobContext) -> dict[str, Any]:
        self.calls.append(context)
        self.entered.set()
        self.release.wait(10)
        publish_lists(
            context,
            context.stores.online,
            "test",
            {"*": [{"item_id": "late"}]},
            as_of=context.end,
            version="late",
        )
        return {}

    def wait(self, context: JobContext) -> dict[str, Any]:
        self.entered.set()
        self.release.wait(10)
        return {"waited": True}


@pytest.fixture
def jobs() -> Jobs:
    return Jobs()


@pytest.fixture
def registry(jobs: Jobs) -> JobRegistry:
    registry = JobRegistry()
    registry.register("flaky", jobs.flaky, schedule="1h", retry=FAST, timeout_seconds=5)
    registry.register(
        "hangs", jobs.hang_then_publish, schedule="1h", retry=FAST, timeout_seconds=0.3
    )
    registry.register("waits", jobs.wait, schedule="1h", retry=FAST, timeout_seconds=10)
    registry.planned("train", "0 3 * * *", "needs the model registry")
    return registry


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def runner(
    settings: Settings,
    registry: JobRegistry,
    history: RunHistory,
    stores: Stores,
    sleeps: list[float],
    webhook: Webhook,
) -> JobRunner:
    return JobRunner(
        settings,
        registry,
        history,
        stores=stores,
        alerts=AlertHook(webhook.url),
        clock=lambda: NOW,
        sleep=sleeps.append,
    )


def _count(name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_success_records_one_attempt_and_metrics(runner: JobRunner, history: RunHistory) -> None:
    before = _count("tastebud_batch_job_executions_total", job_name="flaky", status="succeeded")
    outcome = runner.run("flaky", START, END)
    assert (outcome.status, outcome.attempts) == ("succeeded", 1)
    assert outcome.output == {"interval": [START.isoformat(), END.isoformat()]}
    (record,) = history.list_runs(job_name="flaky")
    assert (record.status, record.attempt, record.output) == ("succeeded", 1, outcome.output)
    assert record.interval_start == START and record.interval_end == END
    assert record.duration_seconds is not None and record.duration_seconds >= 0
    after = _count("tastebud_batch_job_executions_total", job_name="flaky", status="succeeded")
    assert after == before + 1
    assert _count("tastebud_batch_job_duration_seconds_count", job_name="flaky") >= 1


def test_transient_errors_are_retried_with_backoff(
    runner: JobRunner, jobs: Jobs, history: RunHistory, sleeps: list[float]
) -> None:
    jobs.failures = [StoreUnavailable("db restarting"), TransientJobError("busy")]
    outcome = runner.run("flaky", START, END)
    assert (outcome.status, outcome.attempts) == ("succeeded", 3)
    assert [r.status for r in reversed(history.list_runs())] == ["failed", "failed", "succeeded"]
    assert [r.error_kind for r in reversed(history.list_runs())] == ["transient", "transient", None]
    assert len({r.run_id for r in history.list_runs()}) == 1
    assert len(sleeps) == 2 and 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02


def test_transient_errors_give_up_after_max_attempts(
    runner: JobRunner, jobs: Jobs, history: RunHistory, webhook: Webhook
) -> None:
    jobs.failures = [StoreUnavailable("down")] * 5
    with pytest.raises(JobFailed, match="after 3 attempt"):
        runner.run("flaky", START, END)
    assert [r.attempt for r in history.list_runs()] == [3, 2, 1]
    assert webhook.received and webhook.received[0]["attempts"] == 3


def test_a_job_that_raises_is_not_retried_and_alerts(
    runner: JobRunner, jobs: Jobs, history: RunHistory, webhook: Webhook
) -> None:
    before = _count("tastebud_batch_job_failures_total", job_name="flaky", reason="error")
    jobs.failures = [ValueError("bad column")]
    with pytest.raises(JobFailed, match="bad column") as raised:
        runner.run("flaky", START, END)
    assert raised.value.outcome.status == "failed"
    (record,) = history.list_runs()
    assert (record.status, record.error, record.error_kind) == (
        "failed",
        "ValueError: bad column",
        "error",
    )
    assert len(jobs.calls) == 1
    (alert,) = webhook.received
    assert alert["job_name"] == "flaky" and alert["reason"] == "error"
    assert "bad column" in alert["error"] and alert["interval_end"] == END.isoformat()
    assert (
        _count("tastebud_batch_job_failures_total", job_name="flaky", reason="error") == before + 1
    )


def test_a_hung_job_times_out_and_cannot_publish_later(
    runner: JobRunner, jobs: Jobs, history: RunHistory, stores: Stores
) -> None:
    began = time.monotonic()
    with pytest.raises(JobFailed, match="timeout"):
        runner.run("hangs", START, END)
    assert time.monotonic() - began < 3
    (record,) = history.list_runs()  # timeouts are not retried
    assert (record.status, record.error_kind) == ("timeout", "timeout")
    jobs.release.set()  # the abandoned attempt wakes up and tries to publish
    deadline = time.monotonic() + 5
    while len(threading.enumerate()) > 1 and any(
        t.name.startswith("job-hangs") for t in threading.enumerate()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert read_published(stores.online, "test") is None


def test_a_second_start_is_refused_and_recorded(
    runner: JobRunner, jobs: Jobs, history: RunHistory
) -> None:
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(out=runner.run("waits", START, END)))
    thread.start()
    try:
        assert jobs.entered.wait(5)
        with pytest.raises(JobAlreadyRunning, match="already running"):
            runner.run("waits", START, END)
    finally:
        jobs.release.set()
        thread.join(10)
    assert first["out"].status == "succeeded"
    statuses = sorted((r.status, r.error_kind) for r in history.list_runs(job_name="waits"))
    assert statuses == [("skipped", "already_running"), ("succeeded", None)]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (END, START, "not before its end"),
        (START, START, "not before its end"),
        (NOW, NOW + timedelta(hours=1), "in the future"),
        (START, None, "--start needs --end"),
        (datetime(2025, 1, 1), datetime(2025, 1, 2), "timezone"),
    ],
)
def test_bad_intervals_are_refused_before_anything_runs(
    runner: JobRunner,
    jobs: Jobs,
    history: RunHistory,
    start: datetime | None,
    end: datetime | None,
    message: str,
) -> None:
    with pytest.raises(InvalidInterval, match=message):
        runner.run("flaky", start, end)
    assert jobs.calls == [] and history.list_runs() == []


def test_default_interval_is_the_schedules_latest(runner: JobRunner, jobs: Jobs) -> None:
    outcome = runner.run("flaky")
    assert (outcome.start, outcome.end) == (NOW - timedelta(hours=1), NOW)
    only_end = runner.run("flaky", None, NOW - timedelta(hours=2))
    assert only_end.start == NOW - timedelta(hours=3)


def test_unknown_and_unavailable_jobs(runner: JobRunner) -> None:
    with pytest.raises(UnknownJob, match="known jobs: flaky"):
        runner.run("nope")
    with pytest.raises(JobNotAvailable, match="needs the model registry"):
        runner.run("train", START, END)


def test_skip_if_succeeded(runner: JobRunner, jobs: Jobs) -> None:
    runner.run("flaky", START, END)
    again = runner.run("flaky", START, END, skip_if_succeeded=True)
    assert again.status == "skipped" and len(jobs.calls) == 1


def test_register_keeps_the_planned_schedule(registry: JobRegistry, jobs: Jobs) -> None:
    planned = registry.get("train")
    assert not planned.available
    registry.register("train", jobs.flaky)
    now_available = registry.runnable("train")
    assert now_available.schedule == planned.schedule and now_available.reason is None
    with pytest.raises(ValueError, match="needs a schedule"):
        registry.register("brand-new", jobs.flaky)


def test_webhook_failure_does_not_raise() -> None:
    assert AlertHook("http://127.0.0.1:9/unreachable", timeout_seconds=0.5).send({"a": 1}) is False
    assert AlertHook(None).send({"a": 1}) is False
