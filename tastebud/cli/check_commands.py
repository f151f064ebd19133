"""What ``tastebud quality`` and ``tastebud monitor`` share: both run a set of checks as of
a moment, record the results, and read the recorded history back. The commands differ in
their checks, their report table and what makes them exit 1; the running, the error
handling and the history table are written once here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from tastebud.cli.common import (
    EXIT_STORE,
    clock_for,
    console,
    fail,
    out,
    parse_moment,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.stores import Stores

Report = TypeVar("Report")
# The options both commands take alike.
RecordOption = Annotated[bool, typer.Option(help="Record the results in the history.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RunOption = Annotated[str | None, typer.Option(help="One run's results (its run id).")]
LimitOption = Annotated[int, typer.Option(min=1, max=10_000, help="How many results.")]
STYLES = {"pass": "green", "warn": "yellow", "error": "magenta", "fail": "bold red"}


def run_and_show(
    settings: Settings,
    as_of: str | None,
    record: bool,
    as_json: bool,
    open_results: Callable[[Stores], Any],
    run: Callable[..., Report],
    show: Callable[[Report], None],
) -> Report:
    """Run the checks as of ``--as-of`` (recording them unless ``--no-record``), print
    the report as JSON or with ``show``, and return it; bad rules and an unreachable store
    are clean CLI failures."""
    from tastebud.quality.rules import RulesError  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    clock = clock_for(settings, parse_moment(as_of, "--as-of"))
    if not as_json:
        console.print(clock.describe())
    with stores_for(settings) as stores:
        results = open_results(stores) if record else None
        try:
            report = run(stores, settings, as_of=clock.as_of, results=results)
        except RulesError as error:
            raise fail(str(error)) from None
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
        finally:
            if results is not None:
                results.close()
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))  # type: ignore[attr-defined]
    else:
        show(report)
    return report


def refuse_unknown(option: str, value: str | None, names: Sequence[str]) -> None:
    """A ``--check``/``--status`` value that names nothing is a usage error."""
    if value is not None and value not in names:
        raise fail(f"{option} must be one of {', '.join(names)}, not {value!r}")


def show_history(
    settings: Settings,
    open_results: Callable[[Stores], Any],
    query: dict[str, Any],
    as_json: bool,
    with_version: bool = False,
) -> None:
    """The recorded results that match ``query``, newest first: as JSON, or as a table
    (with the model version column for ``with_version``)."""
    from tastebud.stores import StoreError  # lazy: CLI start-up

    with stores_for(settings) as stores:
        try:
            with open_results(stores) as results:
                rows = results.history(**query)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if as_json:
        out.print_json(json.dumps([row.as_dict() for row in rows], default=str))
        return
    version = ["version"] if with_version else []
    table = Table("checked at", "run", *version, "check", "status", "message")
    for row in rows:
        table.add_row(
            row.checked_at.isoformat(timespec="seconds"),
            row.run_id,
            *([row.model_version] if with_version else []),
            row.check,
            f"[{STYLES.get(row.status, '')}]{row.status}[/]",
            row.message,
        )
    out.print(table)
