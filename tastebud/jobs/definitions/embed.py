"""``embed``: hourly, embed the catalog items that are new or changed since the last version.

The first run fits the embedder on the whole catalog; later runs are incremental (see
``tastebud.content.pipeline``). A run with nothing new registers nothing. Audio extraction
uses one worker process per core, each file bounded by the per-file timeout. A first build
of a large music catalog can take longer than the job's timeout: audio files not started
within the run's budget are deferred (their items are embedded from metadata and text
meanwhile) and taken up by the next runs, so coverage comes first and audio fills in.
"""

from __future__ import annotations

import time
from typing import Any

from tastebud.content.catalog_embedding import embed_catalog
from tastebud.jobs.base import EmptyWindow, JobContext


def audio_budget(deadline: float | None) -> float | None:
    """When to stop starting audio files: leave a fifth of the remaining time (at least a
    minute) for embedding, saving and registering."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    return deadline - max(60.0, 0.2 * remaining)


def run(context: JobContext) -> dict[str, Any]:
    if context.stores.catalog.count_items() == 0:
        raise EmptyWindow("the catalog has no items: nothing to embed")
    outcome = embed_catalog(
        context.settings,
        context.stores,
        before_register=context.check,
        audio_stop_at=audio_budget(context.deadline),
    )
    return outcome.summary()
