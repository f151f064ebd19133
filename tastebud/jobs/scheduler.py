"""The in-process scheduler for the embedded mode: each poll, every scheduled job whose
newest complete interval has not run yet is run, one at a time.

Misfires: when the scheduler was down (or a job ran long) and several ticks passed, only the
newest ``max_catchup_runs`` intervals run and the skipped ones are logged, because the
popularity and trending outputs only matter for "now". Two schedulers may run side by side:
the per-job lock keeps them from running the same job at once, and an interval that already
succeeded is not run again.

Refusals: a run refused for too little data (``InsufficientData``) records the event
store's log position; the job is not run again until that position moves. A stalled or
historical store would otherwise repeat the same refusal every few minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from tastebud.jobs.base import JobAlreadyRunning, JobDefinition
from tastebud.jobs.history import RunHistory
from tastebud.jobs.roster import JobRegistry
from tastebud.jobs.runner import JobFailed, JobRunner, RunOutcome, utcnow
from tastebud.jobs.schedules import OnDemand
from tastebud.observability import get_logger, metrics

log = get_logger("tastebud.jobs.scheduler")
MISFIRES = metrics.counter(
    "batch", "job_misfires", "total", "Scheduled intervals skipped after a misfire.", ["job_name"]
)
# How many missed ticks are counted before giving up counting (a cron every minute, down
# for a month, would otherwise walk 40,000 ticks).
MAX_COUNTED_TICKS = 10_000


class Scheduler:
    def __init__(
        self,
        runner: JobRunner,
        registry: JobRegistry,
        history: RunHistory,
        *,
        max_catchup_runs: int = 1,
        jobs: list[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        data_version: Callable[[], int | None] | None = None,
    ) -> None:
        self.runner = runner
        self.registry = registry
        self.history = history
        self.max_catchup_runs = max_catchup_runs
        self.jobs = jobs
        self.clock = clock
        self.data_version = data_version
        self._version: int | None = None  # the event store's position, read once per tick
        self._version_read = False
        self._waiting: set[str] = set()  # refused run ids already logged as waiting

    def scheduled(self) -> list[JobDefinition]:
        chosen = []
        for definition in self.registry:
            if self.jobs is not None and definition.name not in self.jobs:
                continue
            if definition.available and not isinstance(definition.schedule, OnDemand):
                chosen.append(definition)
        return chosen

    def current_version(self) -> int | None:
        """The event store's position (None: unknown), read at most once per tick."""
        if not self._version_read:
            self._version_read = True
            try:
                self._version = self.data_version() if self.data_version else None
            except Exception as error:  # unknown: run, and let the job report the store
                log.warning("event store position unreadable", error=str(error))
                self._version = None
        return self._version

    def waiting_for_data(self, definition: JobDefinition) -> bool:
        """Whether the job's last run was refused and no event has arrived since."""
        last = self.history.list_runs(job_name=definition.name, limit=1)
        if not last or last[0].status != "refused":
            return False
        recorded = (last[0].output or {}).get("data_version")
        if recorded is None or recorded != self.current_version():
            return False
        if last[0].run_id not in self._waiting:
            self._waiting.add(last[0].run_id)
            log.info(
                "refused job waits for new events",
                job=definition.name,
                refused=last[0].error,
                data_version=recorded,
            )
        return True

    def due(self, definition: JobDefinition, now: datetime) -> list[datetime]:
        """Interval ends to run now, oldest first; logs the ones a misfire skips."""
        latest = definition.schedule.previous(now)
        if latest is None:
            return []
        if self.waiting_for_data(definition):
            return []
        last = self.history.last_interval_end(definition.name)
        if last is None:
            return [latest]
        if last >= latest:
            return []
        ticks = definition.schedule.ticks_between(last, now, MAX_COUNTED_TICKS)
        missed = len(ticks) - self.max_catchup_runs
        if missed > 0:
            MISFIRES.labels(job_name=definition.name).inc(missed)
            log.warning(
                "misfire: skipping missed intervals",
                job=definition.name,
                skipped=missed,
                since=last.isoformat(),
                running_from=ticks[-self.max_catchup_runs].isoformat(),
            )
        return ticks[-self.max_catchup_runs :]

    def tick(self, stop: threading.Event | None = None) -> list[RunOutcome]:
        """One pass over every scheduled job; failures are alerted by the runner and do not
        stop the other jobs. ``stop`` set: the job running finishes, no other starts (a
        first pass after days away runs every job, minutes of work Ctrl-C must not wait
        for)."""
        outcomes: list[RunOutcome] = []
        self._version_read = False
        for definition in self.scheduled():
            for end in self.due(definition, self.clock()):
                if stop is not None and stop.is_set():
                    return outcomes
                start, end = definition.schedule.interval_ending(end)
                try:
                    outcomes.append(
                        self.runner.run(
                            definition.name,
                            start,
                            end,
                            trigger="scheduler",
                            skip_if_succeeded=True,
                        )
                    )
                except JobAlreadyRunning:
                    break  # someone else is on it; try again next poll
                except JobFailed as error:
                    outcomes.append(error.outcome)
        return outcomes

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        log.info("scheduler started", jobs=[d.name for d in self.scheduled()])
        while not stop.is_set():
            try:
                self.tick(stop)
            except Exception as error:  # a broken store must not kill the scheduler
                log.error("scheduler tick failed", error=f"{type(error).__name__}: {error}")
            stop.wait(poll_seconds)
        log.info("scheduler stopped")
