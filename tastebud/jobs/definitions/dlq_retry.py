"""``dlq-retry``: every 15 minutes, store the dead letters that failed for a transient
reason (the store was unavailable). Invalid events stay until someone fixes the rules or
purges them (``tastebud dlq retry --all`` retries those by hand); retrying them on a
schedule would only count failed attempts.

Idempotent: an entry is removed only once its event is stored, and a stored event id is
never stored twice, so a rerun (or an overlapping manual retry) changes nothing.
"""

from __future__ import annotations

from typing import Any

from tastebud.gateway.dlq import retry_entries
from tastebud.jobs.base import JobContext

PAGE = 500


def run(context: JobContext) -> dict[str, Any]:
    database = context.stores.database
    letters = database.gateway.dead_letters
    totals = {"stored": 0, "duplicates": 0, "still_invalid": 0}
    after: int | None = None
    while page := letters.list_entries(kind="transient", after_id=after, limit=PAGE):
        context.check()
        report = retry_entries(database, context.settings, page).as_dict()
        for key in totals:
            totals[key] += report[key]
        after = page[-1].entry_id
    totals["remaining_transient"] = letters.count(kind="transient")
    return totals
