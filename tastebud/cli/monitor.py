"""``tastebud monitor``: run the model-monitoring checks, and read their history."""

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
    from tastebud.monitoring.results import MonitorReport

app = typer.Typer(
    help="Model monitoring and retraining triggers (docs/monitoring.md).", no_args_is_help=True
)

# Spelled out so that help needs no import of tastebud.monitoring (CLI start-up).
CHECK_NAMES = ("baseline", "offline", "lists", "scores", "age", "new_data", "data_drift", "online")
STATUS_NAMES = ("pass", "error", "fail")
EXIT_FIRING = 1


@app.command("check")
def check(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(help="Judge as of this moment (default: now, or a historical store's end)."),
    ] = None,
    record: RecordOption = True,
    as_json: JsonOption = False,
) -> None:
    """Run every check on the production model now; exit 1 when a retraining trigger
    fires (the retrain job would train)."""
    from tastebud.monitoring.runner import open_results, run_monitor  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    report = run_and_show(settings, as_of, record, as_json, open_results, run_monitor, show_report)
    if report.firing:
        raise typer.Exit(EXIT_FIRING)


def show_report(report: MonitorReport) -> None:
    table = Table(
        "check", "status", "trigger", "message",
        title=f"run {report.run_id}, model {report.model_version}",
    )  # fmt: skip
    for result in report.checks:
        style = STYLES[result.status]
        table.add_row(
            result.check, f"[{style}]{result.status}[/]", result.trigger or "", result.message
        )
    out.print(table)
    if report.firing:
        names = ", ".join(str(check.trigger) for check in report.firing)
        console.print(f"[bold red]retraining triggers fire:[/] {names}")


@app.command("history")
def history(
    ctx: typer.Context,
    check: Annotated[str | None, typer.Option(help=f"One check: {', '.join(CHECK_NAMES)}.")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"One status: {', '.join(STATUS_NAMES)}.")
    ] = None,
    version: Annotated[str | None, typer.Option(help="One model version.")] = None,
    run: RunOption = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """Recorded results, newest first."""
    refuse_unknown("--check", check, CHECK_NAMES)
    refuse_unknown("--status", status, STATUS_NAMES)
    from tastebud.monitoring.runner import open_results  # lazy: CLI start-up

    query = dict(model_version=version, check=check, status=status, run_id=run, limit=limit)
    show_history(settings_from_context(ctx), open_results, query, as_json, with_version=True)
