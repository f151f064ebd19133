"""Changes reach every worker's book within 5 s, and an unreachable store never fails a
request: the last book is kept for the grace period, then users get control."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from experiments.factories import experiment
from tastebud.config import Settings
from tastebud.experiments.store import ExperimentStore
from tastebud.experiments.watch import ExperimentWatcher
from tastebud.observability import metrics
from tastebud.stores import open_database

FAILURES = "tastebud_experiments_store_failures_total"


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """How long ``condition`` took to hold; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not seen within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_every_change_reaches_two_watchers(
    open_store: Callable[[], ExperimentStore],
) -> None:
    """Two watchers, each on its own connection to the database, polling fast; the changes
    are made through a third store (the CLI). The default interval's 5 s promise is the
    two-process test's below."""
    settings = Settings.model_validate({"experiments": {"poll_seconds": 0.1}})
    writer = open_store()
    writer.put(experiment(), actor="ana")
    watchers = [ExperimentWatcher(settings, open_store()).start() for _ in range(2)]
    try:
        assert all(not watcher.book for watcher in watchers)  # a draft assigns no one
        writer.set_status("blend", "running", actor="ana")
        for watcher in watchers:
            wait_for(lambda w=watcher: bool(w.book), 5.0)
        assignment = watchers[0].book.assign("user-1")
        assert assignment is not None and assignment.experiment == "blend"
        writer.pause_variant("blend", "diverse", "breach", actor="guardrails")
        for watcher in watchers:
            wait_for(lambda w=watcher: bool(w.book.running[0].experiment.paused_variants), 5.0)
        markers = {watcher.marker for watcher in watchers}
        assert markers == {writer.marker()}
    finally:
        for watcher in watchers:
            watcher.stop()


def test_the_book_is_rebuilt_only_when_the_marker_moves(store: ExperimentStore) -> None:
    watcher = ExperimentWatcher(Settings(), store)
    assert watcher.refresh() is True  # the first read builds the (empty) book
    assert watcher.refresh() is False
    store.put(experiment(), actor="ana")
    assert watcher.refresh() is True and not watcher.book
    store.set_status("blend", "running", actor="ana")
    assert watcher.refresh() is True and watcher.book
    book = watcher.book
    assert watcher.refresh() is False and watcher.book is book


def test_an_unreachable_store_keeps_the_book_then_serves_control(postgres_url: str) -> None:
    """The store's tables locked on the real server: each poll times out under the read
    budget, is counted, and never raises; past the grace the book empties (control)."""
    database = open_database(postgres_url)
    store = ExperimentStore(database.sql_backend("experiments"))
    now = [0.0]
    settings = Settings(experiments={"store_grace_seconds": 10})
    watcher = ExperimentWatcher(settings, store, clock=lambda: now[0])
    try:
        store.put(experiment(), actor="ana")
        store.set_status("blend", "running", actor="ana")
        watcher.refresh()
        assert watcher.book
        before = metrics.registry.get_sample_value(FAILURES) or 0.0
        with psycopg.connect(postgres_url) as holder:
            holder.execute("LOCK TABLE experiments IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            assert watcher.refresh() is False  # no exception reaches the caller
            assert time.monotonic() - started < 2.0
            now[0] = 9.0
            assert watcher.refresh() is False and watcher.book  # within the grace
            now[0] = 11.0
            assert watcher.refresh() is True and not watcher.book  # users get control
            assert watcher.book.assign("user-1") is None
            holder.rollback()
        assert (metrics.registry.get_sample_value(FAILURES) or 0.0) - before == 3
        assert watcher.refresh() is True and watcher.book  # back as soon as it answers
        assert watcher.failing_since is None
    finally:
        watcher.stop()
        store.close()
        database.close()


def test_a_disabled_watcher_reads_nothing(store: ExperimentStore) -> None:
    store.put(experiment(), actor="ana")
    store.set_status("blend", "running", actor="ana")
    settings = Settings.model_validate({"experiments": {"enabled": False}})
    watcher = ExperimentWatcher(settings, store).start()
    assert not watcher.book and watcher.marker is None
    watcher.stop()


def _worker(url: str, key: str, ready: Any, seen: Any) -> None:
    """One server worker's part: its own process, database connection and watcher."""
    database = open_database(url)
    store = ExperimentStore(database.sql_backend("experiments"))
    watcher = ExperimentWatcher(Settings(), store).start()
    try:
        ready.put(True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(entry.experiment.key == key for entry in watcher.book.running):
                seen.put(time.time())
                return
            time.sleep(0.01)
        seen.put(None)
    finally:
        watcher.stop()
        store.close()
        database.close()


def test_two_worker_processes_see_a_start_within_five_seconds(
    database_url: str, store: ExperimentStore
) -> None:
    """As ``tastebud serve --workers 2`` runs them: two processes, each polling on its own
    at the default interval (2 s)."""
    assert Settings().experiments.poll_seconds <= 2
    store.put(experiment(), actor="ana")
    context = multiprocessing.get_context("spawn")
    ready, seen = context.Queue(), context.Queue()
    workers = [
        context.Process(target=_worker, args=(database_url, "blend", ready, seen)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            assert ready.get(timeout=60)
        started = time.time()
        store.set_status("blend", "running", actor="ana")
        moments = [seen.get(timeout=15) for _ in workers]
        assert None not in moments
        assert max(moments) - started < 5.0
    finally:
        for worker in workers:
            worker.join(timeout=15)
            if worker.is_alive():
                worker.kill()
