"""Batch jobs: a registry of named jobs with schedules, a runner with timeouts, retries and
run history, and an in-process scheduler for the embedded mode. Orchestrators (Airflow,
Prefect, Dagster) call ``tastebud jobs run NAME --start --end`` per interval instead.

Names are imported on first use (``tastebud.lazy``): listing the jobs needs their schedules,
not the runner and the stores (CLI start-up).

Layer (docs/architecture.md): may import every part below it (``ranking``, ``features``,
``signals``, ``training``, ``content``, ``engines``, ``push``...); only ``api`` and ``cli``
import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tastebud.lazy import lazy_exports
from tastebud.stores.retry import RetryPolicy  # the one retry policy (stdlib only)

if TYPE_CHECKING:
    from tastebud.jobs.base import (
        EmptyWindow,
        InsufficientData,
        InvalidInterval,
        JobAlreadyRunning,
        JobContext,
        JobDefinition,
        JobError,
        JobNotAvailable,
        JobTimeout,
        TransientJobError,
        UnknownJob,
    )
    from tastebud.jobs.history import RunHistory, RunRecord
    from tastebud.jobs.history_open import open_run_history
    from tastebud.jobs.roster import JobRegistry
    from tastebud.jobs.runner import JobFailed, JobRunner, RunOutcome

__all__ = [
    "EmptyWindow",
    "InsufficientData",
    "InvalidInterval",
    "JobAlreadyRunning",
    "JobContext",
    "JobDefinition",
    "JobError",
    "JobFailed",
    "JobNotAvailable",
    "JobRegistry",
    "JobRunner",
    "JobTimeout",
    "RetryPolicy",
    "RunHistory",
    "RunOutcome",
    "RunRecord",
    "TransientJobError",
    "UnknownJob",
    "open_run_history",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "EmptyWindow": "base",
        "InsufficientData": "base",
        "InvalidInterval": "base",
        "JobAlreadyRunning": "base",
        "JobContext": "base",
        "JobDefinition": "base",
        "JobError": "base",
        "JobNotAvailable": "base",
        "JobTimeout": "base",
        "TransientJobError": "base",
        "UnknownJob": "base",
        "RunHistory": "history",
        "RunRecord": "history",
        "open_run_history": "history_open",
        "JobRegistry": "roster",
        "JobFailed": "runner",
        "JobRunner": "runner",
        "RunOutcome": "runner",
    },
)
