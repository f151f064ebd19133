"""Batch jobs: a registry of named jobs with schedules, a runner with timeouts, retries and
run history, and an in-process scheduler for the embedded mode. Orchestrators (Airflow,
Prefect, Dagster) call ``tastebud jobs run NAME --start --end`` per interval instead."""

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
from tastebud.jobs.history import RunHistory, RunRecord, open_run_history
from tastebud.jobs.registry import JobRegistry
from tastebud.jobs.retry import RetryPolicy
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
