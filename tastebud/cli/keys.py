"""``tastebud keys``: create, list and revoke API keys (stored hashed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from tastebud.cli.common import EXIT_STORE, fail, gateway_stores_for, out, settings_from_context

# The scopes of ``tastebud.stores.keys.SCOPES``, named here so that help does not import
# the stores (CLI start-up); tests/test_cli_startup.py checks that they agree.
SCOPE_NAMES = ("ingest", "read", "admin")

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


def _when(moment: float | None) -> str:
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


@app.command("create")
def create(
    ctx: typer.Context,
    scope: Annotated[
        str, typer.Option(help=f"Comma-separated scopes among {', '.join(SCOPE_NAMES)}.")
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
    from tastebud.stores import StoreError  # lazy: stores bring pyarrow (CLI start-up)
    from tastebud.stores.keys import check_scopes  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    try:
        scopes = check_scopes(scope.split(","))
    except ValueError as error:
        raise fail(str(error)) from None
    with gateway_stores_for(settings) as stores:
        try:
            created = stores.keys.create(scopes, name, rate_per_second=rate, burst=burst)
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
    from tastebud.stores import StoreError  # lazy: stores bring pyarrow (CLI start-up)

    settings = settings_from_context(ctx)
    with gateway_stores_for(settings) as stores:
        try:
            keys = stores.keys.list_keys()
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
    from tastebud.stores import StoreError  # lazy: stores bring pyarrow (CLI start-up)

    settings = settings_from_context(ctx)
    with gateway_stores_for(settings) as stores:
        try:
            revoked = stores.keys.revoke(key_id)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if not revoked:
        raise fail(f"no active key {key_id!r}", 1)
    out.print(f"revoked key {key_id}", highlight=False)
