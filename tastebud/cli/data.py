"""``tastebud ingest`` and ``tastebud stats``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tastebud.cli.common import (
    EXIT_STORE,
    console,
    database_for,
    fail,
    out,
    progress_bar,
    settings_from_context,
    stores_for,
)
from tastebud.data.formats import FORMATS, KINDS

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.bulk_load import IngestReport
    from tastebud.data.loaders import Source
    from tastebud.stores import Stores


IngestPath = Annotated[
    Path, typer.Argument(help="A dataset folder, or one file of events/items/users.")
]
KindOption = Annotated[
    str | None,
    typer.Option(help=f"What a single file holds: {', '.join(KINDS)} (default events)."),
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", help=f"File format: {', '.join(FORMATS)} (default: from the suffix)."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map", help="Column mapping target=source, e.g. --map user_id=customer (repeatable)."
    ),
]
EventTypeOption = Annotated[
    str, typer.Option(help="Event type for interaction rows that have no event_type or rating.")
]
DefaultTimestampOption = Annotated[
    str | None,
    typer.Option(help="Timestamp for files without one (ISO-8601 or epoch seconds)."),
]
StrictOption = Annotated[
    bool, typer.Option(help="Exit 1 if any row was rejected (good rows are still stored).")
]
QualityOption = Annotated[
    bool,
    typer.Option(
        help="Also run the data-quality schema check on each stored batch (ranges, "
        "rating scale: docs/quality.md); costs ~0.3 s per 100k events."
    ),
]


def ingest(
    ctx: typer.Context,
    path: IngestPath,
    kind: KindOption = None,
    fmt: FormatOption = None,
    mapping: MapOption = None,
    event_type: EventTypeOption = "view",
    default_timestamp: DefaultTimestampOption = None,
    strict: StrictOption = False,
    report: Annotated[Path | None, typer.Option(help="Write the full JSON report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    show: Annotated[int, typer.Option(help="How many rejected rows to list.")] = 20,
    quality: QualityOption = False,
) -> None:
    """Load events, items or users into the stores, reporting every rejected row."""
    settings = settings_from_context(ctx)
    if kind is not None and kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if fmt is not None and fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if event_type not in settings.events.types:
        raise fail(
            f"--event-type {event_type!r} is not configured ({', '.join(settings.events.types)})"
        )
    sources = _open_sources(path, kind, fmt, mapping, event_type, default_timestamp)
    tally, on_events = _quality_tally(settings) if quality else (None, None)
    with stores_for(settings) as stores:
        result = _run(sources, stores, settings, on_events)
    document = result.as_dict()
    if tally is not None:
        document["quality"] = {
            "events": tally.rows,
            "invalid_share": tally.invalid_share,
            "failures": tally.details(),
        }
    if report is not None:
        report.write_text(json.dumps(document, indent=2))
    if as_json:
        out.print_json(json.dumps(document))
    else:
        _print_report(result, show)
        if tally is not None:
            _print_quality(tally)
    if strict and result.rejected:
        raise typer.Exit(1)


def _open_sources(
    path: Path,
    kind: str | None,
    fmt: str | None,
    mapping: list[str] | None,
    event_type: str,
    default_timestamp: str | None,
) -> list[Source]:
    """The files under ``path`` with their kind, format and column mapping; a bad mapping,
    path or timestamp is a clean CLI failure."""
    # Imported here, not at the top: loaders and validation bring pyarrow (CLI start-up).
    from tastebud.data.loaders import open_sources  # lazy: CLI start-up
    from tastebud.data.loaders.columns import MappingError, parse_mapping  # lazy: CLI start-up
    from tastebud.schemas import parse_timestamp  # lazy: CLI start-up

    try:
        moment = parse_timestamp(default_timestamp) if default_timestamp else None
        return open_sources(
            path,
            kind=kind,  # type: ignore[arg-type]
            fmt=fmt,
            mapping=parse_mapping(mapping),
            event_type=event_type,
            default_timestamp=moment,
        )
    except (MappingError, FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None


def _quality_tally(settings: Settings) -> tuple[Any, Any]:
    """A schema tally and the callback that feeds it each stored batch."""
    from tastebud.quality.schema import SchemaTally, check_table, event_schema  # lazy: CLI start-up

    tally = SchemaTally()
    schema = event_schema(settings, datetime.now(UTC))
    return tally, lambda table: check_table(table, schema, settings, tally)


def _print_quality(tally: Any) -> None:
    if not tally.failures:
        console.print(f"quality: {tally.rows:,} stored events, none breaks the contract")
        return
    console.print(
        f"[yellow]quality:[/] {sum(tally.failures.values()):,} values in {tally.rows:,} "
        "stored events break the contract (docs/quality.md):"
    )
    for failure in tally.details():
        console.print(
            f"  {failure['column']} {failure['check']}: {failure['count']:,} "
            f"(e.g. {failure['example']})"
        )


def _run(
    sources: list[Any], stores: Stores, settings: Settings, on_events: Any = None
) -> IngestReport:
    from tastebud.data.bulk_load import ingest_sources  # lazy: CLI start-up
    from tastebud.data.loaders.columns import MappingError  # lazy: pyarrow (CLI start-up)
    from tastebud.stores import StoreError  # lazy: CLI start-up

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(kind: str, done: int, total: int | None) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(f"ingest {kind}", total=total)
            bar.update(tasks[kind], completed=done, total=max(total or 0, done) or None)

        try:
            return ingest_sources(sources, stores, settings, progress=progress, on_events=on_events)
        except StoreError as error:
            raise fail(
                f"store error during ingest (re-running is safe): {error}", EXIT_STORE
            ) from None
        except (MappingError, ValueError) as error:
            raise fail(str(error)) from None


def _print_report(result: IngestReport, show: int) -> None:
    table = Table(title="ingest")
    for column in ("kind", "source", "read", "stored", "duplicates", "rejected", "seconds"):
        table.add_column(column, justify="right" if column not in ("kind", "source") else "left")
    for source in result.sources:
        table.add_row(
            source.kind,
            Path(source.path).name,
            f"{source.rows_read:,}",
            f"{source.stored:,}",
            f"{source.duplicates:,}",
            f"[red]{source.rejected:,}[/]" if source.rejected else "0",
            f"{source.seconds:.1f}",
        )
    out.print(table)
    for source in result.sources:
        for note in source.notes:
            out.print(f"[yellow]note[/] {Path(source.path).name}: {note}")
        if source.rejected:
            reasons = ", ".join(
                f"{reason} x{count}" for reason, count in source.by_reason.most_common()
            )
            out.print(
                f"[red]rejected[/] {Path(source.path).name}: {source.rejected:,} rows ({reasons})"
            )
            for rejection in source.rejections[:show]:
                out.print(f"  line {rejection.row}: {rejection.reason}: {rejection.message}")
            if source.rejected > show:
                out.print(f"  ... {source.rejected - show:,} more (see --report)")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Users, items, events by type and the time range of what is stored."""
    from pydantic import ValidationError  # lazy: stores and pydantic (CLI start-up)

    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with database_for(settings) as database:
        try:
            event_stats = database.events.stats()
            document = {
                "database": settings.resolved_database_url.split("@")[-1],
                "users": {
                    "catalog": database.catalog.count_users(),
                    "with_events": event_stats.users,
                },
                "items": {
                    "catalog": database.catalog.count_items(),
                    "active": database.catalog.count_items(active=True),
                    "with_events": event_stats.items,
                },
                "events": {
                    "total": event_stats.events,
                    "by_type": event_stats.by_type,
                    "first": _iso(event_stats.first),
                    "last": _iso(event_stats.last),
                },
            }
        except (StoreError, ValidationError) as error:
            raise fail(str(error), EXIT_STORE) from None
    if as_json:
        out.print_json(json.dumps(document))
        return
    table = Table(title=f"tastebud stats ({document['database']})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    users, items, events = document["users"], document["items"], document["events"]
    table.add_row("users in catalog", f"{users['catalog']:,}")
    table.add_row("users with events", f"{users['with_events']:,}")
    table.add_row("items in catalog", f"{items['catalog']:,} ({items['active']:,} active)")
    table.add_row("items with events", f"{items['with_events']:,}")
    table.add_row("events", f"{events['total']:,}")
    for name, count in events["by_type"].items():
        table.add_row(f"  {name}", f"{count:,}")
    table.add_row("first event", str(events["first"]))
    table.add_row("last event", str(events["last"]))
    out.print(table)
    console.print()
