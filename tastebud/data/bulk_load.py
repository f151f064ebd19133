"""Bulk loading (``tastebud ingest``): files -> validation -> stores, with a report of every
rejected row. (The live path, one HTTP request of events at a time, is ``gateway.ingestion``.)

Good rows are always kept; a bad row is reported with its source line and reason. Events
without an id get a deterministic one (``validation.content_event_ids``) and the stores are
idempotent, so an interrupted ingest can simply be run again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from tastebud.config import Settings
from tastebud.data.loaders import Source
from tastebud.data.loaders.files import RawBatch
from tastebud.observability import get_logger, metrics
from tastebud.schemas import Item, User
from tastebud.stores import Stores
from tastebud.validation import Rejection, pydantic_reasons, validate_event_table

log = get_logger(__name__)

# progress(kind, rows_done, rows_total_or_None)
Progress = Callable[[str, int, int | None], None]


@dataclass
class SourceReport:
    kind: str
    path: str
    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)  # the first ones, capped
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "rows_read": self.rows_read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.by_reason.most_common()),
            "rejections": [r.as_dict() for r in self.rejections],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class IngestReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.as_dict() for s in self.sources],
            "totals": {
                name: sum(getattr(s, name) for s in self.sources)
                for name in ("rows_read", "stored", "duplicates", "rejected")
            },
        }


def ingest_sources(
    sources: Iterable[Source],
    stores: Stores,
    settings: Settings,
    *,
    progress: Progress | None = None,
    on_events: Callable[[pa.Table], None] | None = None,
) -> IngestReport:
    """``on_events`` sees each batch of events as stored (the data-quality schema check of
    ``tastebud ingest --quality`` tallies them there)."""
    report = IngestReport()
    for source in sources:
        report.sources.append(
            ingest_source(source, stores, settings, progress=progress, on_events=on_events)
        )
    return report


def ingest_source(
    source: Source,
    stores: Stores,
    settings: Settings,
    *,
    progress: Progress | None = None,
    on_events: Callable[[pa.Table], None] | None = None,
) -> SourceReport:
    started = time.perf_counter()
    report = SourceReport(source.kind, str(source.path), notes=list(source.notes))
    cap = settings.ingest.max_reported_rejections
    for batch in source.read(settings.ingest.batch_size):
        if source.kind == "events":
            stored, duplicates, rejections = _store_events(batch, stores, settings, on_events)
        else:
            stored, duplicates, rejections = _store_catalog(source, batch, stores, settings)
        report.rows_read += batch.rows_read
        report.stored += stored
        report.duplicates += duplicates
        report.rejected += len(rejections)
        report.by_reason.update(r.reason for r in rejections)
        room = cap - len(report.rejections)
        if room > 0:
            report.rejections.extend(sorted(rejections, key=lambda r: r.row)[:room])
        if progress is not None:
            progress(source.kind, report.rows_read, source.total_rows)
    report.seconds = time.perf_counter() - started
    rows = metrics.counter("ingest", "rows", "total", "Rows read by ingest.", ["kind", "outcome"])
    rows.labels(source.kind, "stored").inc(report.stored)
    rows.labels(source.kind, "duplicate").inc(report.duplicates)
    rows.labels(source.kind, "rejected").inc(report.rejected)
    log.info(
        "ingest.source_done",
        kind=source.kind,
        path=str(source.path),
        stored=report.stored,
        duplicates=report.duplicates,
        rejected=report.rejected,
        seconds=round(report.seconds, 3),
    )
    return report


def _store_events(
    batch: RawBatch,
    stores: Stores,
    settings: Settings,
    on_events: Callable[[pa.Table], None] | None = None,
) -> tuple[int, int, list[Rejection]]:
    rejections = list(batch.rejections)
    if batch.table.num_rows == 0:
        return 0, 0, rejections
    validated = validate_event_table(batch.table, settings.events, batch.row_numbers)
    rejections.extend(validated.rejections)
    table = validated.table
    if table.num_rows:
        # When tastebud received the row: now, unless the file says otherwise.
        received_field = table.schema.field("received_at")
        now = pa.array(np.full(table.num_rows, time.time_ns() // 1000), pa.int64())
        table = table.set_column(
            table.schema.get_field_index("received_at"),
            received_field,
            pc.coalesce(table.column("received_at"), now.cast(received_field.type)),
        )
    result = stores.events.append_arrow(table)
    if on_events is not None and table.num_rows:
        on_events(table)
    return result.inserted, len(result.duplicates), rejections


def _store_catalog(
    source: Source, batch: RawBatch, stores: Stores, settings: Settings
) -> tuple[int, int, list[Rejection]]:
    rejections = list(batch.rejections)
    model: type[Item] | type[User] = Item if source.kind == "items" else User
    good: list[Any] = []
    context = {"rules": settings.events}
    for row, number in zip(batch.table.to_pylist(), batch.row_numbers, strict=True):
        try:
            good.append(model.model_validate(source.to_record(row), context=context))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = f"{where}: {first['msg']}" if where else first["msg"]
            rejections.append(Rejection(int(number), pydantic_reasons(error)[0], message))
        except (ValueError, TypeError, KeyError) as error:
            rejections.append(Rejection(int(number), "malformed_row", str(error)[:200]))
    if good:
        if source.kind == "items":
            stores.catalog.upsert_items(good)
        else:
            stores.catalog.upsert_users(good)
    return len(good), 0, rejections
