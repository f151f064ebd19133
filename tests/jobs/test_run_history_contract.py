"""The run history and job locks: one contract, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import job_fixtures
import pytest

from tastebud.config import Settings
from tastebud.jobs import JobAlreadyRunning, RunHistory, open_run_history
from tastebud.jobs.history_postgres import PostgresRunHistory
from tastebud.jobs.history_sqlite import SqliteRunHistory

# The shared fixture (a conftest.py here would clash with the other test folders').
backend_settings = job_fixtures.backend_settings

T = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def runs(backend_settings: Settings) -> Iterator[RunHistory]:
    history = open_run_history(backend_settings)
    yield history
    history.close()


def _attempt(
    runs: RunHistory, job: str, end: datetime, attempt: int = 1, run_id: str = "r1"
) -> int:
    return runs.start_attempt(
        run_id=run_id,
        job_name=job,
        start=end - timedelta(hours=1),
        end=end,
        attempt=attempt,
        trigger="manual",
        started_at=T,
    )


def test_backend_matches_url(runs: RunHistory, backend_settings: Settings) -> None:
    expected = PostgresRunHistory if backend_settings.database_url else SqliteRunHistory
    assert isinstance(runs, expected)


def test_attempts_are_recorded_running_then_finished(runs: RunHistory) -> None:
    attempt_id = _attempt(runs, "popularity", T)
    (running,) = runs.list_runs()
    assert (running.status, running.finished_at, running.attempt) == ("running", None, 1)
    assert running.interval_start == T - timedelta(hours=1) and running.interval_end == T

    runs.finish_attempt(
        attempt_id,
        status="failed",
        finished_at=T + timedelta(seconds=3),
        duration_seconds=3.0,
        error="ValueError: boom",
        error_kind="error",
    )
    second = _attempt(runs, "popularity", T, attempt=2)
    runs.finish_attempt(
        second,
        status="succeeded",
        finished_at=T + timedelta(seconds=5),
        duration_seconds=1.5,
        output={"items": 3, "version": "v"},
    )
    newest, oldest = runs.list_runs(job_name="popularity")
    assert (newest.attempt, newest.status, newest.output) == (
        2,
        "succeeded",
        {"items": 3, "version": "v"},
    )
    assert (oldest.status, oldest.error, oldest.error_kind) == (
        "failed",
        "ValueError: boom",
        "error",
    )
    assert oldest.duration_seconds == 3.0 and oldest.finished_at == T + timedelta(seconds=3)
    assert [r.status for r in runs.list_runs(status="failed")] == ["failed"]
    assert runs.list_runs(job_name="trending") == []
    assert len(runs.list_runs(limit=1)) == 1


def test_succeeded_and_last_interval(runs: RunHistory) -> None:
    assert runs.last_interval_end("trending") is None
    first = _attempt(runs, "trending", T)
    runs.finish_attempt(first, status="succeeded", finished_at=T, duration_seconds=1.0)
    later = _attempt(runs, "trending", T + timedelta(hours=1))
    runs.finish_attempt(later, status="failed", finished_at=T, duration_seconds=1.0)
    assert runs.succeeded("trending", T - timedelta(hours=1), T)
    assert not runs.succeeded("trending", T, T + timedelta(hours=1))  # that one failed
    assert not runs.succeeded("popularity", T - timedelta(hours=1), T)
    assert runs.last_interval_end("trending") == T + timedelta(hours=1)


def test_unknown_status_is_refused(runs: RunHistory) -> None:
    attempt_id = _attempt(runs, "popularity", T)
    with pytest.raises(ValueError, match="unknown run status"):
        runs.finish_attempt(attempt_id, status="done", finished_at=T, duration_seconds=0.0)


def test_lock_is_exclusive_and_released(runs: RunHistory, backend_settings: Settings) -> None:
    other = open_run_history(backend_settings)
    try:
        with runs.lock("job:popularity"):
            with (
                pytest.raises(JobAlreadyRunning, match="already running"),
                other.lock("job:popularity"),
            ):
                pass
            with other.lock("job:trending"):  # other names are independent
                pass
        with other.lock("job:popularity"):  # released
            pass
    finally:
        other.close()


LOCK_HOLDER = """
import sys, time
from tastebud.config import load_settings
from tastebud.jobs import open_run_history
history = open_run_history(load_settings())
with history.lock("job:popularity"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_lock_held_by_another_process_and_freed_when_it_dies(
    runs: RunHistory, backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend_settings.database_url:
        monkeypatch.setenv("TASTEBUD_DATABASE_URL", backend_settings.database_url)
    with subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "locked"
            with pytest.raises(JobAlreadyRunning), runs.lock("job:popularity"):
                pass
        finally:
            process.kill()
    deadline = time.monotonic() + 10
    while True:  # the server notices the dead session a moment later
        try:
            with runs.lock("job:popularity"):
                break
        except JobAlreadyRunning:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
