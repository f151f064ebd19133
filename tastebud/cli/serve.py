"""``tastebud serve``: the HTTP API (uvicorn, one or more worker processes)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastebud.cli.common import console, out, settings_from_context, stores_for

if TYPE_CHECKING:
    from tastebud.config import Settings

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default 1).")
    ] = None,
) -> None:
    """Serve the HTTP API: events and catalog in; recommendations, similar, popular and
    trending items and features out; health and metrics (docs/reference.md lists every route).

    The stores are opened once here first (so an unreachable database fails fast, and
    schemas are created before the workers race for them); on the embedded store, the first
    run creates an admin API key and prints it, once, on the last line.
    """
    from tastebud.observability import configure_logging  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    gateway = settings.gateway
    host = host or gateway.host
    port = gateway.port if port is None else port
    workers = workers or gateway.workers
    _announce_admin_key(settings)
    configure_logging(settings.log_level, settings.log_format)
    _run_server(host, port, workers)


def _announce_admin_key(settings: Settings) -> None:
    """Open the stores (failing fast when they are unreachable, creating their schemas)
    and, on the first run of the embedded store, create the admin API key: printed once to
    a terminal, written to a private file when the output goes to a log."""
    from tastebud.gateway.keys import bootstrap_admin_key, write_admin_key  # lazy: CLI start-up

    with stores_for(settings) as stores:
        secret = bootstrap_admin_key(settings, stores.database)
    if secret is not None:
        if sys.stdout.isatty():
            console.print(
                "[bold]Created the first admin API key.[/] It is shown this once; store it now."
                " Create narrower keys with `tastebud keys create --scope ingest`."
            )
            out.print(secret, soft_wrap=True, highlight=False)
        else:  # the output goes to a log: the key must not
            path = write_admin_key(secret, settings.home)
            console.print(
                f"[bold]Created the first admin API key[/] in {path} (readable only by you);"
                " store it elsewhere and delete the file.",
                soft_wrap=True,
                highlight=False,
            )


def _run_server(host: str, port: int, workers: int) -> None:
    """Run uvicorn: ``workers`` processes sharing the port when the platform allows it
    (their metrics summed through a temporary multiprocess folder), else uvicorn's own."""
    import uvicorn  # lazy: CLI start-up

    from tastebud.api.server import http_protocol  # lazy: CLI start-up
    from tastebud.api.workers import (  # lazy: CLI start-up
        WorkersFailed,
        reuse_port_supported,
        run_workers,
    )

    metrics_dir = None
    if workers > 1 and not os.environ.get(METRICS_DIR):
        # Each worker counts in its own process; prometheus_client's multiprocess mode sums
        # them at scrape time from files in this folder.
        metrics_dir = tempfile.mkdtemp(prefix="tastebud-metrics-")
        os.environ[METRICS_DIR] = metrics_dir
    options: dict[str, Any] = {
        "app": "tastebud.api.app:app_from_environment",
        "factory": True,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "server_header": False,
        "http": http_protocol(),
    }
    try:
        if workers > 1 and reuse_port_supported():
            try:
                run_workers(host, port, workers, options)
            except WorkersFailed as error:
                console.print(f"[red]error:[/] {error}")
                raise typer.Exit(1) from None
        else:
            uvicorn.run(
                host=host,
                port=port,
                workers=workers,
                # Workers import pyarrow, duckdb and the stores: on a busy machine that takes
                # longer than uvicorn's 5 s default, which would kill and restart them.
                timeout_worker_healthcheck=60,
                **options,
            )
    finally:
        if metrics_dir is not None:
            os.environ.pop(METRICS_DIR, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
