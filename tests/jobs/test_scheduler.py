"""The in-process scheduler: due intervals, misfires, failures that do not stop the loop,
and two schedulers that never run the same interval twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import job_fixtures
import pytest

from tastebud.config import Settings
from tastebud.jobs import (
    InsufficientData,
    JobContext,
    JobRegistry,
    JobRunner,
    RetryPolicy,
    RunHistory,
)
from tastebud.jobs.alerts import AlertHook
from tastebud.jobs.scheduler import Scheduler
from tastebud.observability import metrics
from tastebud.schemas import Event
from tastebud.stores import Stores

# The shared fixtures (a conftest.py here would clash with the other test folders').
history, settings, stores = job_fixtures.history, job_fixtures.settings, job_fixtures.stores

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls() -> list[tuple[str, datetime, datetime]]:
    return []


@pytest.fixture
def registry(calls: list[tuple[str, datetime, datetime]]) -> JobRegistry:
    def record(name: str) -> Any:
        def job(context: JobContext) -> dict[str, Any]:
            calls.append((name, context.start, context.end))
            if name == "broken":
                raise ValueError("always fails")
            return {}

        return job

    registry = JobRegistry()
    fast = RetryPolicy(max_attempts=1)
    registry.register("hourly", record("hourly"), schedule="1h", retry=fast)
    registry.register("broken", record("broken"), schedule="1h", retry=fast)
    registry.register("manual", record("manual"), schedule="manual", retry=fast)
    registry.planned("train", "0 3 * * *", "not yet")
    return registry


def _scheduler(
    settings: Settings, registry: JobRegistry, history: RunHistory, stores: Stores, clock: Clock
) -> Scheduler:
    runner = JobRunner(
        settings, registry, history, stores=stores, alerts=AlertHook(None), clock=clock
    )
    return Scheduler(runner, registry, history, max_catchup_runs=1, clock=clock)


def test_runs_what_is_due_once(
    settings: Settings,
    registry: JobRegistry,
    history: RunHistory,
    stores: Stores,
    clock: Clock,
    calls: list[tuple[str, datetime, datetime]],
) -> None:
    scheduler = _scheduler(settings, registry, history, stores, clock)
    assert [d.name for d in scheduler.scheduled()] == ["hourly", "broken"]
    outcomes = scheduler.tick()
    assert sorted((o.job_name, o.status) for o in outcomes) == [
        ("broken", "failed"),
        ("hourly", "succeeded"),
    ]
    assert ("hourly", T0 - timedelta(hours=1), T0) in calls
    assert scheduler.tick() == []  # nothing new is due; the failure is not re-run either
    clock.now += timedelta(hours=1)
    assert [o.end for o in scheduler.tick() if o.job_name == "hourly"] == [T0 + timedelta(hours=1)]


def test_misfires_run_only_the_newest_interval(
    settings: Settings,
    registry: JobRegistry,
    history: RunHistory,
    stores: Stores,
    clock: Clock,
    calls: list[tuple[str, datetime, datetime]],
) -> None:
    scheduler = _scheduler(settings, registry, history, stores, clock)
    scheduler.jobs = ["hourly"]
    scheduler.tick()
    before = (
        metrics.registry.get_sample_value(
            "tastebud_batch_job_misfires_total", {"job_name": "hourly"}
        )
        or 0.0
    )
    clock.now += timedelta(hours=5)  # the scheduler was down for five ticks
    (outcome,) = scheduler.tick()
    assert outcome.end == T0 + timedelta(hours=5)
    assert len(calls) == 2
    after = metrics.registry.get_sample_value(
        "tastebud_batch_job_misfires_total", {"job_name": "hourly"}
    )
    assert after == before + 4


def test_two_schedulers_never_run_the_same_interval_twice(
    settings: Settings,
    registry: JobRegistry,
    history: RunHistory,
    stores: Stores,
    clock: Clock,
    calls: list[tuple[str, datetime, datetime]],
) -> None:
    first = _scheduler(settings, registry, history, stores, clock)
    second = _scheduler(settings, registry, history, stores, clock)
    first.jobs = second.jobs = ["hourly"]
    threads = [threading.Thread(target=s.tick) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls.count(("hourly", T0 - timedelta(hours=1), T0)) == 1


def test_run_forever_stops(
    settings: Settings, registry: JobRegistry, history: RunHistory, stores: Stores, clock: Clock
) -> None:
    scheduler = _scheduler(settings, registry, history, stores, clock)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(stop, 0.01))
    thread.start()
    deadline = time.monotonic() + 5
    while not history.list_runs(job_name="hourly") and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert history.list_runs(job_name="hourly")


def test_a_stop_lets_the_running_job_finish_and_starts_no_other(
    settings: Settings, history: RunHistory, stores: Stores, clock: Clock
) -> None:
    """Ctrl-C during a first pass (every job due): the scheduler stopped only after the
    whole pass, minutes of jobs on a real world, long after the rest had exited."""
    stop, ran = threading.Event(), []

    def first(context: JobContext) -> dict[str, Any]:
        stop.set()  # the signal arrives while this job runs
        ran.append("first")
        return {}

    def second(context: JobContext) -> dict[str, Any]:
        ran.append("second")
        return {}

    registry = JobRegistry()
    registry.register("first", first, schedule="1h", retry=RetryPolicy(max_attempts=1))
    registry.register("second", second, schedule="1h", retry=RetryPolicy(max_attempts=1))
    scheduler = _scheduler(settings, registry, history, stores, clock)
    outcomes = scheduler.tick(stop)
    assert [(o.job_name, o.status) for o in outcomes] == [("first", "succeeded")]
    assert ran == ["first"]  # finished, and "second" never started
    assert [o.job_name for o in scheduler.tick()] == ["second"]  # due at the next start


def test_a_refused_job_waits_for_new_events(
    settings: Settings, history: RunHistory, stores: Stores, clock: Clock
) -> None:
    """A job refused for too little data is not run again, tick after tick, until the event
    store moves: a historical or stalled store would otherwise repeat the same refusal."""
    ran: list[datetime] = []

    def thin(context: JobContext) -> dict[str, Any]:
        ran.append(context.end)
        if context.stores.events.count() < 2:
            raise InsufficientData("2 events needed", details={"events": 0})
        return {"events": context.stores.events.count()}

    registry = JobRegistry()
    registry.register("thin", thin, schedule="1h", retry=RetryPolicy(max_attempts=3))
    runner = JobRunner(
        settings, registry, history, stores=stores, alerts=AlertHook(None), clock=clock
    )
    loop = Scheduler(runner, registry, history, clock=clock, data_version=stores.events.last_seq)
    (first,) = loop.tick()
    assert (first.status, first.attempts) == ("refused", 1)  # not retried like a failure
    for hours in (1, 2, 3):  # the event store does not move: nothing runs
        clock.now = T0 + timedelta(hours=hours, minutes=1)
        assert loop.tick() == []
    assert len(ran) == 1
    stores.events.append(
        [
            Event(event_id=f"e{n}", user_id="u", item_id="i", event_type="play", timestamp=T0)
            for n in range(2)
        ]
    )
    (second,) = loop.tick()
    assert second.status == "succeeded" and second.end == T0 + timedelta(hours=3)
    assert [r.status for r in history.list_runs(job_name="thin")] == ["succeeded", "refused"]
    refusals = metrics.registry.get_sample_value(
        "tastebud_batch_job_refusals_total",
        {"job_name": "thin", "reason": "insufficient_data"},
    )
    assert refusals == 1
