"""What every command shares: settings, stores, progress bars and user-facing errors.

Start-up budget: ``tastebud --help`` and the light commands should answer in under 0.5 s
(``benchmarks/bench_cli_startup.py``; docs/benchmarks.md says where that is met). So the
command modules import only typer, rich and the standard library at the top; settings,
stores and everything heavier are imported inside the commands that use them (each marked
``# lazy:``), and ``tests/test_cli_startup.py`` keeps it so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

    from tastebud.config import Settings
    from tastebud.jobs.clock import DataClock
    from tastebud.stores import Database, GatewayStores, Stores

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
    from pydantic_core import PydanticCustomError  # lazy: see the module docstring

    from tastebud.schemas import parse_timestamp  # lazy: CLI start-up

    try:
        return parse_timestamp(value)
    except (PydanticCustomError, ValueError) as error:
        raise fail(f"{option} {value!r}: {error}") from None


def settings_from_context(ctx: typer.Context) -> Settings:
    settings = ctx.obj.get("settings") if ctx.obj else None
    if settings is None:
        from pydantic import ValidationError  # lazy: see the module docstring

        from tastebud.config import load_settings  # lazy: CLI start-up
        from tastebud.observability import configure_logging  # lazy: CLI start-up

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
    from tastebud.stores import StoreError, open_stores  # lazy: see the module docstring

    try:
        stores = open_stores(settings)
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    try:
        yield stores
    finally:
        stores.close()


@contextmanager
def database_for(settings: Settings) -> Iterator[Database]:
    """The database alone (events, catalog), for commands that need neither the online
    store nor the artifacts."""
    from tastebud.stores import StoreError, open_database  # lazy: see the module docstring

    try:
        database = open_database(settings.resolved_database_url)
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    try:
        yield database
    finally:
        database.close()


@contextmanager
def gateway_stores_for(settings: Settings) -> Iterator[GatewayStores]:
    """API keys and dead letters alone: ``keys`` and ``dlq`` start without the event store."""
    from tastebud.stores import StoreError, open_gateway_stores  # lazy: see the docstring

    try:
        stores = open_gateway_stores(settings.resolved_database_url)
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    try:
        yield stores
    finally:
        stores.close()


def progress_bar() -> Progress:
    from rich.progress import (  # lazy: only commands that show progress pay for it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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
    from tastebud.jobs.clock import data_clock  # lazy: see the module docstring
    from tastebud.stores import StoreError, open_database  # lazy: CLI start-up

    try:
        with open_database(settings.resolved_database_url) as database:
            return data_clock(
                database.events,
                historical_after=timedelta(hours=settings.jobs.historical_after_hours),
                as_of=as_of,
                max_ahead=timedelta(seconds=settings.events.max_future_seconds),
            )
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    except ValueError as error:
        raise fail(str(error)) from None


def save_or_register(
    settings: Settings,
    out_dir: Path | None,
    promote: str | None,
    save: Callable[[Path], object],
    register: Callable[[Any, list[str]], Any],
) -> None:
    """Write a trained model to ``out_dir`` when one is given, else register it (pointing
    ``promote`` at it); print the folder or the new version."""
    if out_dir is not None:
        save(out_dir)
        out.print(str(out_dir))
        return
    from tastebud.registry import RegistryError, open_registry  # lazy: CLI start-up

    with stores_for(settings) as stores:
        registry = open_registry(settings, stores.artifacts)
        try:
            version = register(registry, [promote] if promote else [])
        except RegistryError as error:
            raise fail(str(error), EXIT_STORE) from None
    out.print(version.model_version)
