"""``tastebud export events``: the event log as Parquet partitioned by day, at any fsspec
URL (a folder, ``s3://``, ``gs://``...), for Spark jobs (``[jobs] spark_events_url``) and
other readers. Each day's folder appears only when complete (``tastebud.stores.export``).
Exit codes: 0 written, 2 bad usage, 3 store unreachable, 1 the export failed (nothing
partial is left behind)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tastebud.cli.common import (
    EXIT_STORE,
    database_for,
    fail,
    out,
    parse_moment,
    settings_from_context,
)

EXIT_FAILED = 1

app = typer.Typer(help="Export data for other engines.", no_args_is_help=True)


@app.command("events")
def export_events_command(
    ctx: typer.Context,
    out_url: Annotated[
        str,
        typer.Option("--out", help="Where to write: a folder or any fsspec URL (s3://, gs://)."),
    ],
    since: Annotated[
        str | None,
        typer.Option(help="First event time, inclusive (ISO-8601 or epoch seconds)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last event time, exclusive. Default: no end.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows per day as JSON.")] = False,
) -> None:
    """Write events in [--since, --until) under --out as day=YYYY-MM-DD/part-*.parquet.

    A day exported again replaces the earlier copy of that day; an interrupted export leaves
    no partial day behind."""
    settings = settings_from_context(ctx)
    start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
    if start is not None and end is not None and start >= end:
        raise fail("--since must be before --until")
    # Imported here, not at the top: pyarrow and the stores (CLI start-up).
    from tastebud.stores import StoreError  # lazy: CLI start-up
    from tastebud.stores.export import ExportTargetError, export_events  # lazy: CLI start-up

    with database_for(settings) as database:
        try:
            result = export_events(database.events, out_url, start=start, end=end)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
        except ExportTargetError as error:
            raise fail(str(error)) from None
        except (OSError, ValueError, ImportError) as error:
            raise fail(f"export to {out_url} failed: {error}", EXIT_FAILED) from None
    if as_json:
        out.print_json(json.dumps({"url": out_url, "rows": result.rows, "days": result.days}))
        return
    days = sorted(result.days)
    span = f" ({days[0]} .. {days[-1]})" if days else ""
    out.print(
        f"exported {result.rows:,} events in {len(days)} day partition(s){span} to {out_url}",
        highlight=False,
        soft_wrap=True,
    )
