"""Why a job failed, as a short label: one rule for the runner's metrics and history and
for the failure alert, so the two always name a failure alike."""

from __future__ import annotations

from tastebud.jobs.base import InsufficientData, JobCancelled, JobTimeout
from tastebud.stores.errors import is_transient


def failure_reason(error: BaseException) -> str:
    """A short, stable label for metrics and history."""
    # lazy: trending.detector brings duckdb and pyarrow; the runner starts without them
    from tastebud.trending.detector import StaleDataError

    if isinstance(error, JobTimeout | JobCancelled):
        return "timeout"
    if isinstance(error, InsufficientData):
        return error.reason
    if isinstance(error, StaleDataError):
        return "stale_data"
    if is_transient(error):
        return "transient"
    return "error"
