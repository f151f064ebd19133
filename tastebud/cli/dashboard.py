"""``tastebud dashboard``: the Streamlit dashboard (docs/dashboard.md) in the foreground."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from tastebud.cli.common import fail, out, settings_from_context
from tastebud.dashboard.app_env import KEY_VARIABLE as KEY_ENV
from tastebud.dashboard.app_env import URL_VARIABLE as URL_ENV


def dashboard(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(envvar=URL_ENV, help="A running server's URL (none: in-process stores)."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar=KEY_ENV, help="An API key with the read scope, for --url."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (8501).")] = None,
) -> None:
    """Run the dashboard: the recommendations explorer, operations, models and business
    impact, in a browser (Streamlit; Ctrl-C stops).

    With --url it reads a running server's HTTP API with --key (a read key); without, it
    serves the same API in its own process over the stores the settings name.
    """
    settings = settings_from_context(ctx)
    if url and not url.startswith(("http://", "https://")):
        raise fail(f"--url must start with http:// or https://; got {url!r}")
    if url and not key and settings.gateway.auth:
        raise fail(f"--url needs --key (or {KEY_ENV}): a key with the read scope")
    # lazy: the dashboard's launcher (CLI start-up)
    from tastebud.dashboard.launch import start

    host = host or settings.dashboard.host
    port = settings.dashboard.port if port is None else port
    out.print(
        f"dashboard http://{host}:{port}  reading {url or 'the embedded stores in-process'}"
        "  (Ctrl-C stops)",
        highlight=False,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop, as Ctrl-C
    process = start(host, port, url, key)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    if code not in (0, -15):
        raise typer.Exit(code)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
