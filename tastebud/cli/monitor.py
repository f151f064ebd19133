"""``tastebud monitor``: run the model-monitoring checks, and read their history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

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
    fail,
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


@app.command("shadow")
def shadow(
    url: Annotated[
        str, typer.Option(help="A server (http://host:port): the shadow runs in its workers.")
    ] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None, typer.Option(envvar="TASTEBUD_API_KEY", help="API key with the read scope.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The shadow model against production: every worker's recent comparisons merged, else
    the answering worker's (overlap@k, rank correlation of the scores, latency difference;
    docs/monitoring.md)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"--url must be http:// or https://host[:port]; got {url!r}")
    # lazy: httpx loads for this command only (CLI start-up)
    from tastebud.client import GatewayError, TastebudClient

    try:
        with TastebudClient(url, key, retries=1, timeout=10.0) as client:
            document = client.shadow()
    except GatewayError as error:
        raise fail(f"{url}: {error}", 1) from None
    except Exception as error:  # the server unreachable: say so, no traceback
        raise fail(f"cannot reach {url}: {type(error).__name__}: {error}", 3) from None
    if as_json:
        out.print_json(data=document)
        return
    title = (
        f"shadow {document['shadow_version'] or '-'} ({document['alias']}, sample "
        f"{document['sample']:g}) against production {document['production_version'] or '-'}"
    )
    merged = document.get("fleet") or {}
    shown = merged if merged.get("workers") else document
    source = f"{merged['workers']} worker(s), merged" if shown is merged else "the answering worker"
    table = Table("shadow version", "compared", "overlap@k", "rank corr.", "latency diff ms",
                  title=f"{title}; {source}")  # fmt: skip
    for version, figures in shown["versions"].items():
        table.add_row(
            version,
            str(figures["comparisons"]),
            f"{figures['overlap_mean']} (median {figures['overlap_median']}, k {figures['k']})",
            f"{figures['correlation_mean']} (median {figures['correlation_median']})",
            f"median {figures['latency_difference_ms_median']}, "
            f"p95 {figures['latency_difference_ms_p95']}",
        )
    out.print(table)
    counts = ", ".join(f"{name} {count}" for name, count in shown["counts"].items())
    console.print(f"offered: {counts}; queued here {document['queued']}")
    if document["problem"]:
        console.print(f"[bold red]problem:[/] {document['problem']}")
