"""``tastebud push``: the server's VAPID keys and the listeners' push subscriptions."""

from __future__ import annotations

from typing import Annotated

import typer

from tastebud.cli.common import EXIT_STORE, fail, out, settings_from_context, stores_for

app = typer.Typer(help="Web push: VAPID keys and subscriptions.", no_args_is_help=True)


@app.command("keys")
def keys(
    ctx: typer.Context,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Replace the key pair. Every subscription is dropped: browsers subscribed "
            "with the old public key and subscribe again when the app next opens.",
        ),
    ] = False,
) -> None:
    """Make the VAPID key pair if there is none (or --rotate it); print the public key."""
    # Imported here, not at the top: cryptography and the stores (CLI start-up).
    from tastebud.push.vapid import ensure_keys  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            store = stores.database.push
            before = store.count() if rotate else 0
            found, made = ensure_keys(store, rotate=rotate)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if rotate:
        out.print(f"rotated the VAPID keys; dropped {before} subscriptions", highlight=False)
    elif made:
        out.print("made a VAPID key pair (kept in the database)", highlight=False)
    else:
        out.print("VAPID keys exist already (--rotate replaces them)", highlight=False)
    out.print(found.public_key, soft_wrap=True, highlight=False)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Whether push is set up, and how many subscriptions there are."""
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            store = stores.database.push
            found = store.vapid_keys()
            count = store.count()
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if found is None:
        out.print("no VAPID keys: run `tastebud push keys`", highlight=False)
    else:
        out.print(f"VAPID public key: {found.public_key}", soft_wrap=True, highlight=False)
    out.print(f"{count} subscriptions", highlight=False)
