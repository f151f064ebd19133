"""``tastebud config``: show the settings in effect."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import typer

from tastebud.cli.common import out, settings_from_context

app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***")))
    return url


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective settings (file + environment) as JSON, passwords hidden."""
    from tastebud.config import find_config_file  # lazy: pydantic-settings (CLI start-up)

    settings = settings_from_context(ctx)
    document = json.loads(settings.model_dump_json())
    document["config_file"] = str(find_config_file() or "")
    document["resolved"] = {
        "database_url": _redact(settings.resolved_database_url),
        "online_url": _redact(settings.resolved_online_url),
        "artifacts_url": _redact(settings.resolved_artifacts_url),
        "datasets_cache": str(settings.resolved_datasets_cache),
    }
    for key in ("database_url", "online_url", "artifacts_url"):
        if document.get(key):
            document[key] = _redact(document[key])
    out.print_json(json.dumps(document))
