"""Each server worker's copy of the running experiments, kept fresh off the request path.

A daemon thread rereads the store's change marker every ``experiments.poll_seconds`` (2 s
by default) and rebuilds the ``ExperimentBook`` only when the marker moved, so a change
made through the CLI or the API reaches every worker within one poll plus one read, with
no restart and no cross-process signal. A request reads ``watcher.book``: one attribute
read, swapped whole by the thread (never mutated), so no lock is taken on the request path.

An unreachable store never fails a request: the watcher keeps the last book for a grace
period (``experiments.store_grace_seconds``, 30 s), long enough to ride out a restart of the
database, then serves an empty book, so every user gets control rather than a variant whose
pause or stop the worker can no longer see. Each failed poll is counted
(``tastebud_experiments_store_failures_total``) and logged once per outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tastebud.config import Settings
from tastebud.experiments.assignment import ExperimentBook
from tastebud.experiments.store import ExperimentStore
from tastebud.observability import get_logger, metrics
from tastebud.stores.budget import within_budget

log = get_logger("tastebud.experiments.watch")

STORE_FAILURES = metrics.counter(
    "experiments",
    "store_failures",
    "total",
    "Polls of the experiment store that failed; after the grace period users get control.",
)
BOOK_RELOADS = metrics.counter(
    "experiments",
    "book_reloads",
    "total",
    "Times a worker rebuilt its running experiments after a change in the store.",
)


class ExperimentWatcher:
    """The current ``ExperimentBook`` of one worker (``.book``), refreshed by ``start``'s
    thread or by calling ``refresh``. ``clock``: monotonic seconds (a test's to move)."""

    def __init__(
        self,
        settings: Settings,
        store: ExperimentStore,
        *,
        grace_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.grace_seconds = (
            settings.experiments.store_grace_seconds if grace_seconds is None else grace_seconds
        )
        self.clock = clock
        self.book = ExperimentBook([], settings.ranking)
        self.marker: int | None = None
        self.failing_since: float | None = None
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """One poll: True when the book changed. Never raises: a failure is counted, and
        past the grace period the book empties."""
        try:
            # The store's budgets bound each read (statement timeout), so a locked table
            # delays a poll by at most that instead of hanging the thread.
            with within_budget(self.settings.budgets):
                marker = self.store.marker()
                if marker == self.marker:
                    self._recovered()
                    return False
                experiments = [stored.experiment for stored in self.store.list()]
        except Exception as error:  # whatever the store raises, requests go on
            return self._failed(error)
        self.book = ExperimentBook(experiments, self.settings.ranking)
        self.marker = marker
        BOOK_RELOADS.inc()
        for key, reason in self.book.skipped.items():
            log.warning("experiment_skipped", experiment=key, reason=reason)
        self._recovered()
        log.info(
            "experiments_reloaded",
            marker=marker,
            running=[entry.experiment.key for entry in self.book.running],
        )
        return True

    def _failed(self, error: Exception) -> bool:
        STORE_FAILURES.inc()
        self.failures += 1
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
            log.warning("experiment_store_unreachable", error=str(error)[:300])
        if now - self.failing_since < self.grace_seconds or not self.book:
            return False
        log.error(
            "experiments_suspended",
            seconds=round(now - self.failing_since, 1),
            error=str(error)[:300],
        )
        self.book = ExperimentBook([], self.settings.ranking)
        self.marker = None  # rebuilt from the store as soon as it answers again
        return True

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.info("experiment_store_recovered", failures=self.failures)
        self.failing_since = None

    def start(self) -> ExperimentWatcher:
        """Read the definitions now, then poll on a daemon thread until ``stop``. With
        ``experiments.enabled = false`` nothing is read: the book stays empty (control)."""
        if not self.settings.experiments.enabled:
            return self
        self.refresh()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="experiment-watcher", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.settings.experiments.poll_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
