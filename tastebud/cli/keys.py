"""``tastebud keys``: create, list and revoke API keys (stored hashed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from tastebud.cli.common import EXIT_STORE, fail, out, settings_from_context, stores_for
from tastebud.stores import StoreError
from tastebud.stores.gateway import SCOPES, check_scopes

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


def _when(moment: float | None) -> str:
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


@app.command("create")
def create(
    ctx: typer.Context,
    scope: Annotated[
        str, typer.Option(help=f"Comma-separated scopes among {', '.join(SCOPES)}.")
    ] = "ingest",
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Requests per second (default: settings).")
    ] = None,
    burst: Annotated[
        float | None, typer.Option(min=1, help="Bucket size (default: settings).")
    ] = None,
) -> None:
    """Create a key; the key itself is printed once, on the last line."""
    settings = settings_from_context(ctx)
    try:
        scopes = check_scopes(scope.split(","))
    except ValueError as error:
        raise fail(str(error)) from None
    with stores_for(settings) as stores:
        try:
            created = stores.database.gateway.keys.create(
                scopes, name, rate_per_second=rate, burst=burst
            )
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    assert created is not None
    record, secret = created
    out.print(
        f"created key {record.key_id} with scopes {','.join(record.scopes)}"
        " (shown once: store it now)",
        highlight=False,
    )
    out.print(secret, soft_wrap=True, highlight=False)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (ids, names, scopes; never the keys themselves)."""
    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            keys = stores.database.gateway.keys.list_keys()
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if as_json:
        out.print_json(json.dumps([key.as_dict() for key in keys]))
        return
    table = Table("key id", "name", "scopes", "created", "revoked", "rate/s")
    for key in keys:
        table.add_row(
            key.key_id,
            key.name,
            ",".join(key.scopes),
            _when(key.created_at),
            _when(key.revoked_at),
            "" if key.rate_per_second is None else f"{key.rate_per_second:g}",
        )
    out.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
) -> None:
    """Revoke a key (every worker refuses it within `gateway.key_cache_seconds`)."""
    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            revoked = stores.database.gateway.keys.revoke(key_id)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if not revoked:
        raise fail(f"no active key {key_id!r}", 1)
    out.print(f"revoked key {key_id}", highlight=False)
