"""``exposures-compact``: hourly, the embedded exposure log's small files (one per flush per
worker) merged into a few large files per day (``experiments.exposure_compaction``), so
listing and scanning a day stay fast. A job rather than the writer: serving keeps its two
cores for requests, and one compactor runs for all workers. File ages (what is old enough
to merge, what has waited out its grace) are read on the wall clock, not the run's
interval: this is upkeep of files, not a result over data. A PostgreSQL database keeps
exposures in a table and needs nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tastebud.experiments.exposure_compaction import compact
from tastebud.jobs.base import JobContext
from tastebud.stores import POSTGRES_SCHEMES, local_path


def run(context: JobContext) -> dict[str, Any]:
    url = context.stores.database.url
    if urlsplit(url).scheme in POSTGRES_SCHEMES:
        return {"skipped": "exposures are a PostgreSQL table: nothing to compact"}
    context.check()
    rules = context.settings.experiments
    days = compact(
        local_path(url) / "exposures",
        min_age_seconds=rules.compaction_min_age_seconds,
        grace_seconds=rules.compaction_grace_seconds,
        target_rows=rules.compaction_target_rows,
        target_bytes=rules.compaction_target_mb * 1024 * 1024,
    )
    if days is None:
        return {"skipped": "another compaction holds the lock"}
    return {
        "days": [day.asdict() for day in days],
        "inputs": sum(day.inputs for day in days),
        "outputs": sum(day.outputs for day in days),
        "deleted": sum(day.deleted for day in days),
    }
