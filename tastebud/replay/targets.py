"""Where a replay sends events: the HTTP gateway (as live clients do) or the stores directly.

Through the gateway, events are validated again, enriched and folded into recent activity,
so serving reacts within a second, exactly as to live traffic. Straight into the stores is
the bulk path of ``tastebud ingest``: faster, and serving learns of the events at its next
job run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from tastebud.client import GatewayError, TastebudClient
from tastebud.data.bulk_load import ingest_source
from tastebud.replay.stream import Outcome, TargetFailed
from tastebud.schemas import Item, User
from tastebud.stores import StoreError
from tastebud.validation import Rejection, content_event_ids, pydantic_reasons

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.loaders import Source
    from tastebud.stores import Stores

OPTIONAL_FIELDS = ("value", "session_id", "device_type", "locale")


def _fresh_ids(events: pa.Table) -> pa.Table:
    """Content-derived ids over the shifted times: a replay mints new events, and one
    replay's retries (same content) still store each event once."""
    index = events.schema.get_field_index("event_id")
    ids = pa.array(content_event_ids(events), pa.string())
    return events.set_column(index, events.schema.field("event_id"), ids)


class GatewayTarget:
    """``POST /v1/events`` through ``TastebudClient`` (retries 429/503 after Retry-After)."""

    def __init__(self, client: TastebudClient, url: str, *, keep_ids: bool = False) -> None:
        self.client = client
        self.url = url
        self.keep_ids = keep_ids

    def send(self, events: pa.Table) -> Outcome:
        payloads = [self._payload(row) for row in events.to_pylist()]
        try:
            result = self.client.send_events(payloads)
        except (httpx.HTTPError, GatewayError) as error:
            raise TargetFailed(f"the gateway at {self.url} failed: {error}") from error
        outcome = Outcome(result.accepted, result.duplicates)
        for answer in result.rejected_results():
            outcome.rejected[(answer.get("reasons") or ["rejected"])[0]] += 1
        return outcome

    def _payload(self, row: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "user_id": row["user_id"],
            "item_id": row["item_id"],
            "event_type": row["event_type"],
            "timestamp": row["timestamp"].isoformat(),
            "schema_version": row["schema_version"],
        }
        if self.keep_ids:
            payload["event_id"] = row["event_id"]
        for name in OPTIONAL_FIELDS:
            if row.get(name) is not None:
                payload[name] = row[name]
        if row.get("context"):
            payload["context"] = json.loads(row["context"])
        return payload

    def send_catalog(self, source: Source, settings: Settings) -> Outcome:
        model: type[Item] | type[User] = Item if source.kind == "items" else User
        outcome = Outcome()
        context = {"rules": settings.events}
        for batch in source.read(settings.ingest.batch_size):
            outcome.rejected.update(r.reason for r in batch.rejections)
            good: list[Any] = []
            for row in batch.table.to_pylist():
                try:
                    good.append(model.model_validate(source.to_record(row), context=context))
                except ValidationError as error:
                    outcome.rejected[pydantic_reasons(error)[0]] += 1
                except (ValueError, TypeError, KeyError):
                    outcome.rejected["malformed_row"] += 1
            if not good:
                continue
            try:
                if source.kind == "items":
                    answer = self.client.upsert_items(good)
                else:
                    answer = self.client.upsert_users(good)
            except (httpx.HTTPError, GatewayError) as error:
                raise TargetFailed(f"the gateway at {self.url} failed: {error}") from error
            outcome.accepted += answer.upserted
            outcome.rejected["rejected_by_gateway"] += answer.rejected
        outcome.rejected = +outcome.rejected  # drop zero counts
        return outcome


class StoreTarget:
    """The event store's ``append_arrow``, as ``tastebud ingest`` writes."""

    def __init__(self, stores: Stores, *, keep_ids: bool = False) -> None:
        self.stores = stores
        self.keep_ids = keep_ids

    def send(self, events: pa.Table) -> Outcome:
        if not self.keep_ids:
            events = _fresh_ids(events)
        received = events.schema.field("received_at")
        now = np.full(events.num_rows, time.time_ns() // 1000, np.int64)
        events = events.set_column(
            events.schema.get_field_index("received_at"),
            received,
            pa.array(now, pa.int64()).cast(received.type),
        )
        try:
            result = self.stores.events.append_arrow(events)
        except StoreError as error:
            raise TargetFailed(f"the event store failed: {error}") from error
        return Outcome(result.inserted, len(result.duplicates))

    def send_catalog(self, source: Source, settings: Settings) -> Outcome:
        try:
            report = ingest_source(source, self.stores, settings)
        except StoreError as error:
            raise TargetFailed(f"the catalog store failed: {error}") from error
        return Outcome(report.stored, report.duplicates, Counter(report.by_reason))


def rejection_lines(rejections: list[Rejection]) -> list[str]:
    """Rejected rows as ``line N: reason: message`` for the CLI."""
    return [f"line {r.row}: {r.reason}: {r.message}" for r in rejections]
