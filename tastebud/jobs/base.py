"""What a job is and what it sees: the definition the registry holds, the context one attempt
runs with, and the errors the runner tells apart (transient ones are retried, others not)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tastebud.jobs.schedules import Schedule
from tastebud.signals.errors import EmptyWindow, InsufficientData  # noqa: F401  (re-exported)
from tastebud.stores.errors import TransientError
from tastebud.stores.retry import RetryPolicy

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.stores import Stores


class JobError(RuntimeError):
    """A job could not run as asked; the message says why and what to do."""


class UnknownJob(JobError):
    pass


class JobNotAvailable(JobError):
    """A job that is listed but whose implementation has not landed yet."""


class InvalidInterval(JobError):
    """A reversed, empty or future data interval."""


class JobAlreadyRunning(JobError):
    """Another process (a scheduler, a CLI call) holds this job's lock."""


class JobTimeout(JobError):
    """An attempt ran past its job's timeout; its outputs are not published."""


class JobCancelled(JobError):
    """Raised inside an attempt that the runner has given up on (timeout)."""


class TransientJobError(JobError, TransientError):
    """Raise this (or let a StoreUnavailable through) when trying again may succeed."""


@dataclass
class JobContext:
    """What one attempt of a job runs with (a ``signals.window.Window``). ``start``/``end``
    are the data interval; a job must compute the same outputs for the same interval however
    often it runs."""

    job_name: str
    run_id: str
    attempt: int
    start: datetime
    end: datetime
    settings: Settings
    stores: Stores
    deadline: float | None = None  # time.monotonic() after which the attempt is abandoned
    cancelled: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise if the runner has abandoned this attempt; call it before any visible write
        so a timed-out attempt can never publish after the fact."""
        if self.cancelled.is_set() or (
            self.deadline is not None and time.monotonic() > self.deadline
        ):
            self.cancelled.set()
            raise JobCancelled(f"{self.job_name} attempt {self.attempt} was abandoned (timeout)")


JobFunction = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class JobDefinition:
    """A named job: its function, schedule, timeout and retry policy. ``func`` is None for a
    job that is listed but not available yet; ``reason`` then says what it waits for."""

    name: str
    func: JobFunction | None
    schedule: Schedule
    timeout_seconds: float = 600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    description: str = ""
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.func is not None
