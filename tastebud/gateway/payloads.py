"""Decoded JSON payloads to valid events: the gateway's per-request validation.

Each event goes through the ``Event`` model (bulk ingest uses ``tastebud.validation``'s
column-wise rules instead: at request sizes the model is faster), and an event sent without
an id gets one derived from its content, as in bulk ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from tastebud.config import EventRules
from tastebud.schemas import (
    EVENT_SCHEMA,
    UNSTORABLE_MESSAGES,
    DuplicateKeys,
    Event,
    events_to_arrow,
)
from tastebud.validation import content_event_ids, pydantic_reasons


def validate_payloads(
    payloads: Sequence[Any],
    received_at: datetime,
    rules: EventRules,
    reject: Callable[[int, list[str], str], None],
) -> tuple[pa.Table, list[int]]:
    """The valid events as one EVENT_SCHEMA table, with each row's request index.

    Each event goes through the Event model, not bulk ingest's column-wise validator:
    at request sizes (1 to 1,000 events) the model is faster (measured: 2-3 ms against
    4-6 ms per 100 events), the column-wise kernels pay a fixed cost per call."""
    modelled: list[tuple[int, Event]] = []
    for index, payload in enumerate(payloads):
        event, reasons, message = validate_payload(payload, received_at, rules)
        if event is None:
            reject(index, reasons, message)
        else:
            modelled.append((index, event))
    if not modelled:
        return EVENT_SCHEMA.empty_table(), []
    modelled = _with_content_ids(modelled, payloads)
    table = events_to_arrow([event for _, event in modelled])
    return table, [index for index, _ in modelled]


def validate_payload(
    payload: Any, received_at: datetime, rules: EventRules
) -> tuple[Event | None, list[str], str]:
    """One decoded payload as an Event, or None with its reasons and a message."""
    if not isinstance(payload, dict):
        return None, ["invalid_type"], "an event must be a JSON object"
    if isinstance(payload, DuplicateKeys):  # checked before the copy below drops the mark
        message = UNSTORABLE_MESSAGES["duplicate_key"].format(field=payload.duplicate)
        return None, ["duplicate_key"], message
    if payload.get("timestamp") is None and not rules.require_timestamp:
        # Most event APIs date an event on receipt when the client does not: the
        # event happened about now. (A dead-letter retry dates it when it was queued.)
        payload = {**payload, "timestamp": received_at}
    device = payload.get("device_type")
    if device is not None and not isinstance(device, str):
        # Checked here: Event's validator tests membership in a set, which raises
        # TypeError (not a validation error) for a list or an object.
        return None, ["invalid_device_type"], "device_type must be web, mobile or other"
    try:
        event = Event.from_payload(payload, rules)
    except TypeError as error:  # a validator met a type it did not expect
        return None, ["invalid_type"], f"a field has the wrong type: {str(error)[:100]}"
    except ValidationError as error:
        reasons = list(dict.fromkeys(pydantic_reasons(error)))
        details = error.errors()
        location = ".".join(str(part) for part in details[0]["loc"])
        message = f"{location}: {details[0]['msg']}" if location else details[0]["msg"]
        return None, reasons, message
    return event, [], ""


def _with_content_ids(
    valid: list[tuple[int, Event]], payloads: Sequence[Any]
) -> list[tuple[int, Event]]:
    """Same rule as bulk ingest: an event sent without an id gets one derived from its
    content, so a client's retry of it is idempotent too."""
    missing = [n for n, (index, _) in enumerate(valid) if payloads[index].get("event_id") is None]
    if not missing:
        return valid
    ids = content_event_ids(events_to_arrow([valid[n][1] for n in missing]))
    valid = list(valid)
    for n, event_id in zip(missing, ids, strict=True):
        index, event = valid[n]
        valid[n] = (index, event.model_copy(update={"event_id": event_id}))
    return valid
