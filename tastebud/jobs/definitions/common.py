"""Helpers the job definitions share: their engine, event windows, weights and time decay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tastebud.engines.local import micros  # noqa: F401  (re-exported: the jobs use it)
from tastebud.jobs.base import InsufficientData, JobContext
from tastebud.jobs.clock import newest_event
from tastebud.jobs.outputs import index_key
from tastebud.signals.window import (  # noqa: F401  (re-exported: the jobs use them)
    engine,
    event_weights,
    source,
)


def from_micros(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


def refusal(
    context: JobContext,
    message: str,
    *,
    namespace: str | None = None,
    reason: str = "insufficient_data",
    details: dict[str, Any] | None = None,
) -> InsufficientData:
    """An ``InsufficientData`` whose message also says what keeps serving (the list
    published under ``namespace``) and, when the store's data ends before the window does,
    the ``--as-of`` that would find it."""
    notes = [message]
    details = dict(details or {})
    if namespace is not None:
        try:
            raw = context.stores.online.get(index_key(namespace))
        except Exception:  # the note is a courtesy; the refusal stands without it
            raw = None
        header = json.loads(raw) if raw else {}
        # A placeholder (an empty list saying why) is not a result that keeps serving.
        serving = None if header.get("refused") else header.get("as_of")
        details["serving_as_of"] = serving
        notes.append(
            f"the list published as of {serving} keeps serving"
            if serving
            else "nothing was published before"
        )
    try:
        newest = newest_event(context.stores.events)
    except Exception:
        newest = None
    historical = timedelta(hours=context.settings.jobs.historical_after_hours)
    if newest is not None and context.end - newest > historical:
        details["newest_event"] = newest.isoformat()
        notes.append(
            f"the store's newest event is {newest.isoformat()}: for data that ends in the "
            "past, run as of it (`tastebud jobs run NAME --as-of "
            f"{newest.isoformat(timespec='seconds')}`)"
        )
    return InsufficientData("; ".join(notes), reason=reason, details=details)
