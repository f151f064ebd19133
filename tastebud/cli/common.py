"""What every command shares: settings, stores, progress bars and user-facing errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
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
from tastebud.observability import configure_logging
from tastebud.stores import StoreError, Stores, open_stores

console = Console(stderr=True)
out = Console()

EXIT_USAGE = 2
EXIT_STORE = 3


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


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
