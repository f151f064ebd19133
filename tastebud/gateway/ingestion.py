"""From decoded JSON payloads to durable events: validate, enrich, de-duplicate, append with
retries, and dead-letter what cannot be stored. HTTP-free, so tests and jobs can call it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import Settings
from tastebud.gateway.dlq import DeadLetterQueue, DlqShareMonitor
from tastebud.gateway.enrichment import (
    RequestContext,
    Sessionizer,
    enriched_table,
    enrichment_for,
)
from tastebud.gateway.metrics import (
    ENRICH_FAILED,
    ENRICH_SECONDS,
    ENRICHED,
    EVENTS,
    RETRY_SUCCESS,
    STORE_RETRIES,
)
from tastebud.gateway.payloads import validate_payloads
from tastebud.observability import get_logger
from tastebud.schemas import storable
from tastebud.stores import AppendResult, Stores
from tastebud.stores.activity import RECORDED as ACTIVITY_RECORDED
from tastebud.stores.activity import RecentActivity
from tastebud.stores.dead_letters import DeadLetter
from tastebud.stores.errors import is_permanent
from tastebud.stores.retry import RetryPolicy, retrying

log = get_logger("tastebud.gateway")

Status = Literal["accepted", "duplicate", "rejected"]
# Errors that say the code is wrong, not the store: retrying cannot help.
PROGRAMMING_ERRORS = (TypeError, ValueError, AttributeError, KeyError, AssertionError)


@dataclass
class EventOutcome:
    """One event's result, in request order."""

    index: int
    status: Status
    event_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    message: str | None = None
    dead_letter_id: int | None = None


class GatewayUnavailable(RuntimeError):
    """Neither the event store nor the dead-letter queue could take the events: the request
    must fail as a whole (503) so the client retries; nothing was acknowledged."""


@dataclass(frozen=True)
class Caller:
    """Who sent the request, for dead-letter entries and logs (never the key itself)."""

    key_id: str | None = None
    request_id: str | None = None


@dataclass
class _Ledger:
    """One request's outcomes (by request index) and the dead letters it owes."""

    payloads: Sequence[Any]
    caller: Caller
    outcomes: list[EventOutcome | None]
    invalid: list[tuple[int, DeadLetter]] = field(default_factory=list)
    transient: list[tuple[int, DeadLetter]] = field(default_factory=list)

    def reject(self, index: int, reasons: list[str], message: str) -> None:
        """Payload ``index`` failed validation: rejected, and dead-lettered as invalid."""
        payload = self.payloads[index]
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        event_id = event_id if isinstance(event_id, str) and storable(event_id) else None
        self.outcomes[index] = EventOutcome(index, "rejected", event_id, reasons, message)
        letter = DeadLetter(
            kind="invalid",
            payload=_dump(payload),
            reasons=tuple(reasons),
            message=message,
            event_id=event_id,
            key_id=self.caller.key_id,
            request_id=self.caller.request_id,
        )
        self.invalid.append((index, letter))


def _first_occurrences(
    table: pa.Table, rows: list[int], outcomes: list[EventOutcome | None]
) -> tuple[pa.Table, list[str], dict[str, int]]:
    """The table without repeats of an id within the request (each a duplicate of its first
    occurrence, so recorded in ``outcomes``), the kept ids, and each id's request index."""
    ids = table.column("event_id").to_pylist()
    first: dict[str, int] = {}
    keep: list[int] = []
    for row, event_id in enumerate(ids):
        if event_id in first:
            outcomes[rows[row]] = EventOutcome(rows[row], "duplicate", event_id)
        else:
            first[event_id] = rows[row]
            keep.append(row)
    if len(keep) < len(ids):
        table = table.take(pa.array(keep, pa.int64()))
    return table, [ids[row] for row in keep], first


class EventGateway:
    def __init__(
        self,
        stores: Stores,
        settings: Settings,
        *,
        monitor: DlqShareMonitor | None = None,
        activity: RecentActivity | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stores = stores
        self.settings = settings
        self.rules = settings.events
        self.gateway = settings.gateway
        self.sessions = Sessionizer(stores.online, settings.gateway.session_gap_seconds)
        self.dlq = DeadLetterQueue(stores.database.gateway.dead_letters, settings.gateway)
        self.monitor = monitor
        self.activity = activity
        self._sleep = sleep
        # One appender per process at a time: SQLite takes one writer anyway, and waiting on a
        # lock here is fairer and quicker than SQLite's sleeping busy handler.
        self._append_lock = threading.Lock()

    def ingest(
        self, payloads: Sequence[Any], request: RequestContext, caller: Caller = Caller()
    ) -> list[EventOutcome]:
        """Each payload's outcome, in request order: validated, de-duplicated, enriched,
        appended (retried within the request's budget), what failed dead-lettered."""
        ledger = _Ledger(payloads, caller, [None] * len(payloads))
        table, rows = validate_payloads(payloads, request.received_at, self.rules, ledger.reject)
        table, unique, first = _first_occurrences(table, rows, ledger.outcomes)
        if table.num_rows:
            table = self._enrich(table, request)
            for appended, part_ids, part in self._append_parts(table, unique):
                self._settle(appended, part_ids, part, first, ledger)
        self._dead_letter(ledger.invalid, ledger.transient, ledger.outcomes)
        done = [outcome for outcome in ledger.outcomes if outcome is not None]
        assert len(done) == len(payloads)
        for status, count in Counter(outcome.status for outcome in done).items():
            EVENTS.labels(outcome=status).inc(count)
        if self.monitor is not None:
            self.monitor.record(len(done), len(ledger.invalid) + len(ledger.transient))
        return done

    # --- steps -------------------------------------------------------------------------------

    def _append_parts(
        self, table: pa.Table, unique: list[str]
    ) -> list[tuple[tuple[AppendResult | None, str, bool], list[str], pa.Table]]:
        """The table appended whole, or row by row when the store refused some row's data,
        so only the bad rows are rejected (a data error is not an outage: nothing is
        retried). Each part: (result, error, permanent), its event ids, its rows."""
        result, error, permanent = self._append(table)
        if result is None and permanent and table.num_rows > 1:
            return [
                (self._append(table.slice(row, 1)), [event_id], table.slice(row, 1))
                for row, event_id in enumerate(unique)
            ]
        return [((result, error, permanent), unique, table)]

    def _settle(
        self,
        appended: tuple[AppendResult | None, str, bool],
        part_ids: list[str],
        part: pa.Table,
        first: dict[str, int],
        ledger: _Ledger,
    ) -> None:
        """The outcomes of one appended part: accepted or duplicate when stored (and the
        activity recorded), else a dead letter (invalid when refused, transient otherwise)."""
        result, error, permanent = appended
        outcomes = ledger.outcomes
        if result is not None:
            stored_before = set(result.duplicates)
            for event_id in part_ids:
                index = first[event_id]
                status: Status = "duplicate" if event_id in stored_before else "accepted"
                outcomes[index] = EventOutcome(index, status, event_id)
            self._record_activity(part, stored_before)
            return
        for event_id, row in zip(part_ids, part.to_pylist(), strict=True):
            index = first[event_id]
            letter = DeadLetter(
                kind="invalid" if permanent else "transient",
                payload=_dump_row(row),
                reasons=("unstorable",) if permanent else ("store_unavailable",),
                message=error,
                event_id=event_id,
                key_id=ledger.caller.key_id,
                request_id=ledger.caller.request_id,
            )
            if permanent:
                outcomes[index] = EventOutcome(
                    index, "rejected", event_id, ["unstorable"], error[:200]
                )
                ledger.invalid.append((index, letter))
            else:
                ledger.transient.append((index, letter))

    def _record_activity(self, table: pa.Table, duplicates: set[str]) -> None:
        """Newly stored events go to their users' recent-activity lists, which serving reads
        on the next request. Best effort: the events are stored already, so a failure here
        costs real-time freshness (until the next training), never an acknowledged event."""
        if self.activity is None:
            return
        if duplicates:
            fresh = pc.invert(pc.is_in(table.column("event_id"), pa.array(list(duplicates))))
            table = table.filter(fresh)
        if not table.num_rows:
            return
        try:
            recorded = self.activity.record(table)
        except Exception as error:
            ACTIVITY_RECORDED.labels(outcome="failed").inc(table.num_rows)
            log.warning("activity_record_failed", error=f"{type(error).__name__}: {error}")
            return
        ACTIVITY_RECORDED.labels(outcome="recorded").inc(recorded)

    def _enrich(self, table: pa.Table, request: RequestContext) -> pa.Table:
        started = time.perf_counter()
        try:
            enrichment = enrichment_for(table, request, self.sessions, self.rules.max_locale_length)
        except Exception as error:  # the online store: enrichment is best effort
            if isinstance(error, PROGRAMMING_ERRORS):
                raise
            log.warning("session_enrichment_failed", error=str(error)[:200], events=table.num_rows)
            ENRICH_FAILED.inc(table.num_rows)
            enrichment = enrichment_for(table, request, None, self.rules.max_locale_length)
        enriched = enriched_table(table, enrichment)
        ENRICHED.inc(table.num_rows)
        ENRICH_SECONDS.observe((time.perf_counter() - started) / table.num_rows)
        return enriched

    def _append(self, table: pa.Table) -> tuple[AppendResult | None, str, bool]:
        """Append, retrying transient failures (``stores.errors.is_transient``) with
        exponential backoff and full jitter, within the request's budget (``stores.retry``).
        Returns the result, or the error and whether it is permanent (the store refused the
        data: ``stores.errors.is_permanent``), which is never retried. An error that is
        neither is dead-lettered as transient, so ``dlq retry`` tries it again later."""
        policy = RetryPolicy(
            max_attempts=self.gateway.store_retries + 1,
            base_seconds=self.gateway.retry_base_seconds,
            cap_seconds=self.gateway.retry_max_seconds,
            jitter=1.0,
        )
        attempts = 0

        def append() -> AppendResult:
            nonlocal attempts
            attempts += 1
            with self._append_lock:
                return self.stores.events.append_arrow(table)

        def on_retry(attempt: int, error: BaseException | None, delay: float) -> None:
            log.warning(
                "event_append_failed",
                attempt=attempt,
                of=policy.max_attempts,
                error=f"{type(error).__name__}: {str(error)[:300]}",
            )
            STORE_RETRIES.inc()

        try:
            result = retrying(policy, sleep=self._sleep, on_retry=on_retry)(append)
        except PROGRAMMING_ERRORS as error:
            if not is_permanent(error):
                raise
            return None, f"{type(error).__name__}: {str(error)[:300]}", True
        except Exception as error:
            error_text = f"{type(error).__name__}: {str(error)[:300]}"
            if is_permanent(error):
                log.warning("event_append_refused", events=table.num_rows, error=error_text)
                return None, error_text, True
            log.warning(
                "event_append_failed", attempt=attempts, of=policy.max_attempts, error=error_text
            )
            return None, error_text, False
        if attempts > 1:
            RETRY_SUCCESS.labels(source="request").inc(result.inserted)
        return result, "", False

    def _dead_letter(
        self,
        invalid: list[tuple[int, DeadLetter]],
        transient: list[tuple[int, DeadLetter]],
        outcomes: list[EventOutcome | None],
    ) -> None:
        if transient:
            try:
                ids = self.dlq.add([entry for _, entry in invalid + transient])
            except Exception as error:
                if isinstance(error, PROGRAMMING_ERRORS):
                    raise
                log.error("dead_letter_failed", error=str(error)[:300], events=len(transient))
                raise GatewayUnavailable(
                    "the event store is unavailable and so is the dead-letter queue"
                ) from error
            for (index, entry), entry_id in zip(invalid + transient, ids, strict=True):
                if entry.kind == "transient":
                    outcomes[index] = EventOutcome(
                        index,
                        "rejected",
                        entry.event_id,
                        ["store_unavailable"],
                        "the event store is unavailable; the event is kept in the"
                        " dead-letter queue and will be stored by `tastebud dlq retry`",
                        entry_id,
                    )
                else:
                    _outcome(outcomes, index).dead_letter_id = entry_id
            return
        if invalid:
            try:
                ids = self.dlq.add([entry for _, entry in invalid])
            except Exception as error:  # rejected events are reported to the client anyway
                if isinstance(error, PROGRAMMING_ERRORS):
                    raise
                log.error("dead_letter_failed", error=str(error)[:300], events=len(invalid))
                return
            for (index, _), entry_id in zip(invalid, ids, strict=True):
                _outcome(outcomes, index).dead_letter_id = entry_id


def _outcome(outcomes: list[EventOutcome | None], index: int) -> EventOutcome:
    outcome = outcomes[index]
    assert outcome is not None
    return outcome


def _dump_row(row: dict[str, Any]) -> str:
    """An enriched table row as an event payload (for the dead-letter queue)."""
    return json.dumps(
        {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in row.items()
            if value is not None
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _dump(payload: Any) -> str:
    """The payload as the client sent it (decoded JSON, re-encoded); all-ASCII when it holds
    text no store can keep, which JSON's escapes then carry (``schemas.UNSTORABLE_TEXT``)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text if storable(text) else json.dumps(payload, separators=(",", ":"))
