"""What every command shares: settings, stores, progress bars and user-facing errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import typer
from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tastebud.config import Settings, load_settings
from tastebud.jobs.clock import DataClock, data_clock
from tastebud.observability import configure_logging
from tastebud.schemas import parse_timestamp
from tastebud.stores import StoreError, Stores, open_database, open_stores

console = Console(stderr=True)
out = Console()

EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_REFUSED = 5  # too little data: nothing published, the previous result keeps serving


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def parse_moment(value: str | None, option: str) -> datetime | None:
    """An ``--start``/``--end`` style option as a UTC time (ISO-8601 or epoch seconds)."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except (PydanticCustomError, ValueError) as error:
        raise fail(f"{option} {value!r}: {error}") from None


def settings_from_context(ctx: typer.Context) -> Settings:
    settings = ctx.obj.get("settings") if ctx.obj else None
    if settings is None:
        try:
            settings = load_settings()
        except (ValidationError, FileNotFoundError, ValueError) as error:
            raise fail(f"invalid settings: {error}") from None
        # Commands report through the terminal; their logs stay quiet unless asked for.
        level = settings.log_level if "log_level" in settings.model_fields_set else "WARNING"
        configure_logging(level, settings.log_format)
        ctx.ensure_object(dict)["settings"] = settings
    return settings


@contextmanager
def stores_for(settings: Settings) -> Iterator[Stores]:
    try:
        stores = open_stores(settings)
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    try:
        yield stores
    finally:
        stores.close()


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def clock_for(settings: Settings, as_of: datetime | None = None) -> DataClock:
    """The data clock of the configured store (see ``tastebud.jobs.clock``)."""
    try:
        with open_database(settings.resolved_database_url) as database:
            return data_clock(
                database.events,
                historical_after=timedelta(hours=settings.jobs.historical_after_hours),
                as_of=as_of,
            )
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    except ValueError as error:
        raise fail(str(error)) from None
