"""The dead-letter queue as the gateway uses it: bounded writes with metrics, an alert when the
share of events dead-lettered over a window passes a threshold, and retries from the queue."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from tastebud.config import GatewaySettings, Settings
from tastebud.gateway.metrics import DLQ_ADDED, DLQ_ALERTS, RETRY_SUCCESS
from tastebud.observability import get_logger
from tastebud.schemas import Event, events_to_arrow
from tastebud.stores import Database
from tastebud.stores.dead_letters import DeadLetter, DeadLetterStore
from tastebud.stores.errors import is_permanent
from tastebud.validation import content_event_ids, pydantic_reasons

log = get_logger("tastebud.gateway.dlq")


class DeadLetterQueue:
    """Writes entries under the configured TTL and size cap, counting them by kind."""

    def __init__(
        self,
        store: DeadLetterStore,
        settings: GatewaySettings,
        monitor: DlqShareMonitor | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.monitor = monitor

    def add(self, entries: Sequence[DeadLetter]) -> list[int]:
        if not entries:
            return []
        ids = self.store.add(
            entries,
            max_entries=self.settings.dlq_max_entries,
            ttl_seconds=self.settings.dlq_ttl_seconds,
        )
        for entry in entries:
            DLQ_ADDED.labels(kind=entry.kind).inc()
        return ids


class DlqShareMonitor:
    """Alerts (an error log line, and a POST to a webhook if configured) when the share of
    events dead-lettered over the last ``window`` seconds passes ``threshold``, once at least
    ``min_events`` arrived. At most one alert per window. Counts are per worker process."""

    def __init__(
        self,
        window: float,
        threshold: float,
        min_events: int,
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        post: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.window = window
        self.threshold = threshold
        self.min_events = min_events
        self.webhook_url = webhook_url
        self._clock = clock
        self._post = post or _post_webhook
        self._buckets: deque[list[float]] = deque()  # [second, total, dead]
        self._last_alert: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> DlqShareMonitor:
        return cls(
            settings.alert_window_seconds,
            settings.alert_dlq_share,
            settings.alert_min_events,
            settings.alert_webhook_url,
        )

    def record(self, total: int, dead: int) -> dict[str, Any] | None:
        """Count a request's events; returns the alert raised, if any."""
        now = self._clock()
        second = float(int(now))
        with self._lock:
            if self._buckets and self._buckets[-1][0] == second:
                self._buckets[-1][1] += total
                self._buckets[-1][2] += dead
            else:
                self._buckets.append([second, float(total), float(dead)])
            while self._buckets and self._buckets[0][0] <= now - self.window:
                self._buckets.popleft()
            seen = sum(bucket[1] for bucket in self._buckets)
            dead_total = sum(bucket[2] for bucket in self._buckets)
            share = dead_total / seen if seen else 0.0
            if seen < self.min_events or share <= self.threshold:
                return None
            if self._last_alert is not None and now - self._last_alert < self.window:
                return None
            self._last_alert = now
        alert = {
            "alert": "dlq_share_above_threshold",
            "share": round(share, 4),
            "threshold": self.threshold,
            "window_seconds": self.window,
            "events": int(seen),
            "dead_lettered": int(dead_total),
            "at": datetime.now(UTC).isoformat(),
        }
        DLQ_ALERTS.inc()
        log.error("dlq_share_above_threshold", **{k: v for k, v in alert.items() if k != "alert"})
        if self.webhook_url:
            url = self.webhook_url
            threading.Thread(target=self._post, args=(url, alert), daemon=True).start()
        return alert


def _post_webhook(url: str, alert: dict[str, Any]) -> None:
    try:
        httpx.post(url, json=alert, timeout=5.0).raise_for_status()
    except httpx.HTTPError as error:
        log.warning("dlq_alert_webhook_failed", error=str(error))


# --- retrying entries ------------------------------------------------------------------------


@dataclass
class RetryReport:
    """What ``dlq retry`` did: stored, already stored, still invalid (kept, attempts counted)."""

    stored: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    still_invalid: dict[int, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": len(self.stored),
            "duplicates": len(self.duplicates),
            "still_invalid": len(self.still_invalid),
            "still_invalid_ids": sorted(self.still_invalid),
        }


def event_from_entry(entry: DeadLetter, settings: Settings) -> Event:
    """Re-validate an entry's payload under today's rules (an event type added since may
    make an invalid entry good). Raises ValidationError or ValueError."""
    payload = json.loads(entry.payload)
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    if payload.get("timestamp") is None and not settings.events.require_timestamp:
        # As the gateway does: dated when it was received, which is when it was queued.
        payload["timestamp"] = entry.created_at
    event = Event.from_payload(payload, settings.events)
    update: dict[str, Any] = {}
    if payload.get("event_id") is None:
        update["event_id"] = content_event_ids(events_to_arrow([event]))[0]
    if event.received_at is None:
        update["received_at"] = datetime.fromtimestamp(entry.created_at, UTC)
    return event.model_copy(update=update) if update else event


def _append_isolating(database: Database, events: list[Event]) -> tuple[set[str], dict[str, str]]:
    """Append ``events``; if the store refuses the data (``is_permanent``), append them one
    by one so only the refused ones stay out. Returns the ids stored before and the refused
    ids with the store's message. An outage (``StoreUnavailable``) propagates."""
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    try:
        return set(database.events.append(list(unique.values())).duplicates), {}
    except Exception as error:
        if not is_permanent(error):
            raise
    stored_before: set[str] = set()
    refused: dict[str, str] = {}
    for event_id, event in unique.items():
        try:
            stored_before.update(database.events.append([event]).duplicates)
        except Exception as error:
            if not is_permanent(error):
                raise
            refused[event_id] = f"{type(error).__name__}: {error}"
    return stored_before, refused


def retry_entries(
    database: Database, settings: Settings, entries: Sequence[DeadLetter]
) -> RetryReport:
    """Store what now validates and delete it from the queue; what the store refuses stays,
    as ``unstorable``. An outage propagates (nothing is deleted that was not stored)."""
    report = RetryReport()
    good: list[tuple[DeadLetter, Event]] = []
    for entry in entries:
        assert entry.entry_id is not None
        try:
            good.append((entry, event_from_entry(entry, settings)))
        except ValidationError as error:
            reasons = sorted(set(pydantic_reasons(error)))
            report.still_invalid[entry.entry_id] = reasons
            database.gateway.dead_letters.record_attempt(
                entry.entry_id, reasons, error.errors()[0]["msg"]
            )
        except (ValueError, TypeError) as error:  # TypeError: a field of the wrong shape
            report.still_invalid[entry.entry_id] = ["malformed_payload"]
            database.gateway.dead_letters.record_attempt(
                entry.entry_id, ["malformed_payload"], str(error)[:200]
            )
    if good:
        stored_before, refused = _append_isolating(database, [event for _, event in good])
        seen: set[str] = set()
        done: list[int] = []
        for entry, event in good:
            assert entry.entry_id is not None
            if event.event_id in refused:
                # The store refused this event's data: kept, with the reason, never retried
                # as an outage; the others are stored.
                report.still_invalid[entry.entry_id] = ["unstorable"]
                database.gateway.dead_letters.record_attempt(
                    entry.entry_id, ["unstorable"], refused[event.event_id][:200]
                )
                continue
            if event.event_id in stored_before or event.event_id in seen:
                report.duplicates.append(entry.entry_id)
            else:
                report.stored.append(entry.entry_id)
            seen.add(event.event_id)
            done.append(entry.entry_id)
        database.gateway.dead_letters.delete(done)
        if report.stored:
            RETRY_SUCCESS.labels(source="dlq").inc(len(report.stored))
    return report
