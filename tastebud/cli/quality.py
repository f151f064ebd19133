"""``tastebud quality``: run the data-quality checks, and read their history."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tastebud.cli.common import (
    EXIT_STORE,
    clock_for,
    console,
    fail,
    out,
    parse_moment,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.quality.results import QualityReport

app = typer.Typer(
    help="Data-quality checks of the event log (docs/quality.md).", no_args_is_help=True
)

# Spelled out so that help needs no import of tastebud.quality (CLI start-up).
CHECK_NAMES = (
    "schema",
    "freshness",
    "completeness",
    "volume",
    "drift",
    "cold_start",
    "staleness",
)
STATUS_NAMES = ("pass", "warn", "error", "fail")
STYLES = {"pass": "green", "warn": "yellow", "error": "magenta", "fail": "bold red"}
EXIT_CRITICAL = 1


@app.command("check")
def check(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Judge the window ending here (default: now, or a historical "
            "store's newest event)."
        ),
    ] = None,
    record: Annotated[bool, typer.Option(help="Record the results in the history.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run every check now; exit 1 when a critical check failed (the train job would
    refuse this data)."""
    from tastebud.quality.rules import RulesError  # lazy: CLI start-up
    from tastebud.quality.runner import open_results, run_checks  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    clock = clock_for(settings, parse_moment(as_of, "--as-of"))
    if not as_json:
        console.print(clock.describe())
    with stores_for(settings) as stores:
        results = open_results(stores) if record else None
        try:
            report = run_checks(stores, settings, as_of=clock.as_of, results=results)
        except RulesError as error:
            raise fail(str(error)) from None
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
        finally:
            if results is not None:
                results.close()
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
    else:
        show_report(report)
    if report.blocking:
        raise typer.Exit(EXIT_CRITICAL)


def show_report(report: QualityReport) -> None:
    table = Table("check", "status", "critical", "message", title=f"run {report.run_id}")
    for result in report.checks:
        style = STYLES[result.status]
        table.add_row(
            result.check,
            f"[{style}]{result.status}[/]",
            "yes" if result.critical else "",
            result.message,
        )
    out.print(table)
    if report.blocking:
        names = ", ".join(check.check for check in report.blocking)
        console.print(
            f"[bold red]critical checks failed:[/] {names}: the train job refuses this data"
        )


@app.command("history")
def history(
    ctx: typer.Context,
    check: Annotated[str | None, typer.Option(help=f"One check: {', '.join(CHECK_NAMES)}.")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"One status: {', '.join(STATUS_NAMES)}.")
    ] = None,
    run: Annotated[str | None, typer.Option(help="One run's results (its run id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many results.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recorded results, newest first."""
    if check is not None and check not in CHECK_NAMES:
        raise fail(f"--check must be one of {', '.join(CHECK_NAMES)}, not {check!r}")
    if status is not None and status not in STATUS_NAMES:
        raise fail(f"--status must be one of {', '.join(STATUS_NAMES)}, not {status!r}")
    from tastebud.quality.runner import open_results  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            with open_results(stores) as results:
                rows = results.history(check=check, status=status, run_id=run, limit=limit)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if as_json:
        out.print_json(json.dumps([row.as_dict() for row in rows], default=str))
        return
    table = Table("checked at", "run", "check", "status", "message")
    for row in rows:
        table.add_row(
            row.checked_at.isoformat(timespec="seconds"),
            row.run_id,
            row.check,
            f"[{STYLES.get(row.status, '')}]{row.status}[/]",
            row.message,
        )
    out.print(table)
