"""``tastebud quality``: run the data-quality checks, and read their history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tastebud.cli.check_commands import (
    STYLES,
    JsonOption,
    LimitOption,
    RecordOption,
    RunOption,
    refuse_unknown,
    run_and_show,
    show_history,
)
from tastebud.cli.common import (
    console,
    out,
    settings_from_context,
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
    record: RecordOption = True,
    as_json: JsonOption = False,
) -> None:
    """Run every check now; exit 1 when a critical check failed (the train job would
    refuse this data)."""
    from tastebud.quality.runner import open_results, run_checks  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    report = run_and_show(settings, as_of, record, as_json, open_results, run_checks, show_report)
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
    run: RunOption = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """Recorded results, newest first."""
    refuse_unknown("--check", check, CHECK_NAMES)
    refuse_unknown("--status", status, STATUS_NAMES)
    from tastebud.quality.runner import open_results  # lazy: CLI start-up

    query = dict(check=check, status=status, run_id=run, limit=limit)
    show_history(settings_from_context(ctx), open_results, query, as_json)
