"""``tastebud dlq``: list, inspect, retry and purge the dead-letter queue."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tastebud.cli.common import (
    EXIT_STORE,
    console,
    fail,
    gateway_stores_for,
    out,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.gateway.dlq import RetryReport
    from tastebud.stores.dead_letters import DeadLetterKind

app = typer.Typer(
    help="Inspect and replay events the gateway could not store.", no_args_is_help=True
)

KINDS = ("invalid", "transient")
PAGE = 500


def _kind(kind: str | None) -> DeadLetterKind | None:
    if kind is not None and kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind  # type: ignore[return-value]


@app.command("list")
def list_entries(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="invalid or transient.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many entries.")] = 50,
    after: Annotated[int | None, typer.Option(help="Start after this entry id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Entries, oldest first, with their reasons; and the queue's size and drops."""
    from tastebud.stores import StoreError  # lazy: stores bring pyarrow (CLI start-up)

    settings = settings_from_context(ctx)
    wanted = _kind(kind)
    with gateway_stores_for(settings) as stores:
        letters = stores.dead_letters
        try:
            entries = letters.list_entries(kind=wanted, after_id=after, limit=limit)
            total, dropped = letters.count(kind=wanted), letters.dropped()
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if as_json:
        document = {
            "total": total,
            "dropped": {"cap": dropped.cap, "ttl": dropped.ttl},
            "entries": [
                {k: v for k, v in entry.as_dict().items() if k != "payload"} for entry in entries
            ],
        }
        out.print_json(json.dumps(document))
        return
    table = Table("id", "kind", "created", "reasons", "event id", "attempts", "message")
    for entry in entries:
        table.add_row(
            str(entry.entry_id),
            entry.kind,
            datetime.fromtimestamp(entry.created_at, UTC).isoformat(timespec="seconds"),
            ",".join(entry.reasons),
            entry.event_id or "",
            str(entry.attempts),
            entry.message[:60],
        )
    out.print(table)
    out.print(
        f"{total} entries; dropped so far: {dropped.cap} over the size cap,"
        f" {dropped.ttl} past the TTL",
        highlight=False,
    )


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    entry_id: Annotated[int, typer.Argument(help="The entry id shown by `dlq list`.")],
) -> None:
    """One entry as JSON, with its payload."""
    from tastebud.stores import StoreError  # lazy: stores bring pyarrow (CLI start-up)

    settings = settings_from_context(ctx)
    with gateway_stores_for(settings) as stores:
        try:
            entry = stores.dead_letters.get(entry_id)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    if entry is None:
        raise fail(f"no dead-letter entry {entry_id}", 1)
    document = entry.as_dict()
    with contextlib.suppress(ValueError):
        document["payload"] = json.loads(entry.payload)
    out.print_json(json.dumps(document, ensure_ascii=False))


@app.command("retry")
def retry(
    ctx: typer.Context,
    entry_ids: Annotated[list[int] | None, typer.Argument(help="Entry ids to retry.")] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Retry every entry.")] = False,
    kind: Annotated[str | None, typer.Option(help="With --all: only this kind.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Store entries that now validate (the store is back, or the rules changed), and remove
    them from the queue; the rest stay, with their attempts counted."""
    # Imported here, not at the top: stores bring pyarrow (CLI start-up).
    from tastebud.gateway.dlq import RetryReport, retry_entries  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    wanted = _kind(kind)
    if not entry_ids and not retry_all:
        raise fail("name entry ids, or pass --all")
    report = RetryReport()
    with stores_for(settings) as stores:
        letters = stores.database.gateway.dead_letters
        try:
            if entry_ids:
                found = [letters.get(entry_id) for entry_id in entry_ids]
                missing = [i for i, entry in zip(entry_ids, found, strict=True) if entry is None]
                if missing:
                    raise fail(f"no dead-letter entries {', '.join(map(str, missing))}", 1)
                _merge(report, retry_entries(stores.database, settings, found))  # type: ignore[arg-type]
            else:
                after: int | None = None
                while page := letters.list_entries(kind=wanted, after_id=after, limit=PAGE):
                    _merge(report, retry_entries(stores.database, settings, page))
                    after = page[-1].entry_id
        except StoreError as error:
            summary = json.dumps(report.as_dict())
            raise fail(f"{error} (retried before the failure: {summary})", EXIT_STORE) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        out.print(
            f"stored {len(report.stored)}, already stored {len(report.duplicates)},"
            f" still invalid {len(report.still_invalid)}",
            highlight=False,
        )
    if report.still_invalid:
        # Each letter that could not be stored is reported and kept (the others were
        # stored); the exit code says some failed, for scripts and cron.
        for entry_id, reasons in sorted(report.still_invalid.items())[:20]:
            console.print(f"entry {entry_id}: not stored ({', '.join(reasons)})", highlight=False)
        raise typer.Exit(EXIT_NOT_STORED)


EXIT_NOT_STORED = 1  # some letters are still invalid or refused by the store: kept


def _merge(total: RetryReport, part: RetryReport) -> None:
    total.stored.extend(part.stored)
    total.duplicates.extend(part.duplicates)
    total.still_invalid.update(part.still_invalid)


@app.command("purge")
def purge(
    ctx: typer.Context,
    entry_ids: Annotated[list[int] | None, typer.Argument(help="Entry ids to remove.")] = None,
    purge_all: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    older_than: Annotated[
        float | None, typer.Option(help="Only entries older than this many seconds.")
    ] = None,
) -> None:
    """Remove entries for good."""
    from tastebud.stores import StoreError  # lazy: stores bring pyarrow (CLI start-up)

    settings = settings_from_context(ctx)
    wanted = _kind(kind)
    if not entry_ids and not purge_all and older_than is None:
        raise fail("name entry ids, or pass --all or --older-than")
    with gateway_stores_for(settings) as stores:
        letters = stores.dead_letters
        try:
            if entry_ids:
                removed = letters.delete(entry_ids)
            else:
                cutoff = None if older_than is None else time.time() - older_than
                removed = letters.purge(kind=wanted, older_than=cutoff)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    out.print(f"removed {removed} entries", highlight=False)
