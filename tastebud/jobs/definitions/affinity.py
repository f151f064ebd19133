"""``affinity``: daily, each user's time-decayed affinity to the catalog's categories.

The affinities are ``tastebud.signals.affinity`` (the ``user_category_affinity`` feature
view stores the same); this job publishes each user's top categories.

Minimum support: a window with fewer than ``affinity_min_events`` events is refused (the
published per-user affinities keep serving until their TTL).
"""

from __future__ import annotations

import json
from typing import Any

from tastebud.jobs.base import EmptyWindow, InsufficientData, JobContext
from tastebud.jobs.definitions.common import refusal
from tastebud.jobs.outputs import prune_versions, write_version
from tastebud.signals import affinity

PREFIX = "jobs/affinity"
KEY = "affinity:{user_id}"
TTL_SECONDS = 7 * 86_400.0  # a user who stops appearing fades out of the online store
PUBLISH_CHUNK = 10_000


def run(context: JobContext) -> dict[str, Any]:
    try:
        table = affinity.compute(context)
    except EmptyWindow as error:
        raise refusal(context, f"affinity: {error}", reason="empty_window") from None
    except InsufficientData as error:
        raise refusal(context, str(error), details=error.details) from None
    top = context.settings.jobs.affinity_top_categories
    context.check()
    key = write_version(context.stores.artifacts, PREFIX, context.end, table)
    documents: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        entries = documents.setdefault(row["user_id"], [])
        if len(entries) < top:
            entries.append(
                {"category": row["category"], "score": row["score"], "share": row["share"]}
            )
    as_of = context.end.isoformat()
    users = list(documents)
    for offset in range(0, len(users), PUBLISH_CHUNK):
        context.check()
        chunk = users[offset : offset + PUBLISH_CHUNK]
        context.stores.online.set_many(
            {
                KEY.format(user_id=user): json.dumps(
                    {"as_of": as_of, "version": key, "categories": documents[user]},
                    separators=(",", ":"),
                ).encode()
                for user in chunk
            },
            ttl_seconds=TTL_SECONDS,
        )
    prune_versions(context.stores.artifacts, PREFIX, context.settings.jobs.keep_versions, key)
    return {"users": len(users), "rows": table.num_rows, "version": key}
