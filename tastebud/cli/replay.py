"""``tastebud replay``: send a recorded dataset's events again, in time order, as a live
stream (docs/replay.md).

Exit codes: 0 every event was sent; 2 bad usage or nothing to send; 3 the store or gateway
could not be reached at the start; 1 interrupted mid-way (what was acknowledged is stored,
and the message says where to resume).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from tastebud.cli.common import (
    EXIT_STORE,
    console,
    fail,
    out,
    parse_moment,
    progress_bar,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.loaders import Source
    from tastebud.replay import LoadedEvents, ReplayPlan, ReplayReport, Target

EXIT_INTERRUPTED = 1


PathArgument = Annotated[Path, typer.Argument(help="A dataset folder or one file of events.")]
SpeedOption = Annotated[
    float,
    typer.Option(help="Recorded seconds per second of replay (1 = real time; 0 = at once)."),
]
SinceOption = Annotated[
    str | None, typer.Option("--from", help="First recorded time to send (inclusive).")
]
UntilOption = Annotated[
    str | None, typer.Option("--to", help="Recorded time to stop before (exclusive).")
]
RatePatternOption = Annotated[
    str,
    typer.Option(
        help="recorded (the data's own gaps / --speed), uniform or poisson (--rate events/s)."
    ),
]
RateOption = Annotated[float | None, typer.Option(help="Events per second for uniform or poisson.")]
UrlOption = Annotated[
    str | None,
    typer.Option(help="Send through this gateway (http://host:port); default: the stores."),
]
KeyOption = Annotated[
    str | None,
    typer.Option(envvar="TASTEBUD_API_KEY", help="API key with the write scope, for --url."),
]
EndsAtOption = Annotated[
    str | None,
    typer.Option(help="Stamp the data to end at this time (default: when the replay ends)."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping target=source, as for ingest (repeatable)."),
]
EventTypeOption = Annotated[
    str, typer.Option(help="Event type for rows that have no event_type or rating.")
]
CatalogOption = Annotated[bool, typer.Option(help="Also send the dataset's items and users first.")]
KeepIdsOption = Annotated[
    bool,
    typer.Option(help="Send the file's event ids (a second replay is then all duplicates)."),
]


def replay_command(
    ctx: typer.Context,
    path: PathArgument,
    speed: SpeedOption = 3600.0,
    since: SinceOption = None,
    until: UntilOption = None,
    rate_pattern: RatePatternOption = "recorded",
    rate: RateOption = None,
    url: UrlOption = None,
    key: KeyOption = None,
    ends_at: EndsAtOption = None,
    mapping: MapOption = None,
    event_type: EventTypeOption = "view",
    batch_size: Annotated[int, typer.Option(help="Most events sent in one request.")] = 500,
    catalog: CatalogOption = True,
    keep_ids: KeepIdsOption = False,
    seed: Annotated[int, typer.Option(help="Seed of the poisson pattern.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a dataset's events in time order, shifted to end now, at --speed.

    Rows that fail validation are reported with their line and not sent. Without --url the
    events go straight into the stores (as `tastebud ingest`)."""
    settings = settings_from_context(ctx)
    if event_type not in settings.events.types:
        raise fail(f"--event-type {event_type!r} is not configured")
    if key is not None and url is None:
        raise fail("--key applies to --url")
    if url is not None:
        _check_url(url)
    plan = _plan(speed, rate_pattern, rate, since, until, ends_at, batch_size, seed)
    sources, loaded = _load(settings, path, mapping, event_type, plan)
    _print_loaded(loaded, as_json)
    if loaded.table.num_rows == 0:
        raise fail("nothing to replay: no valid event in the file (or in --from/--to)")
    catalog_sources = [s for s in sources if s.kind != "events"] if catalog else []
    if url is None:
        with stores_for(settings) as stores:
            from tastebud.replay import StoreTarget  # lazy: the replay brings pyarrow (start-up)

            document = _run(
                StoreTarget(stores, keep_ids=keep_ids), catalog_sources, loaded, plan, settings
            )
    else:
        document = _through_gateway(url, key, keep_ids, catalog_sources, loaded, plan, settings)
    if as_json:
        out.print_json(json.dumps(document))
    else:
        _print_report(document)


def _check_url(url: str) -> None:
    """Refuse a --url that names no gateway as bad usage (exit 2), before anything is read:
    sent on, it would fail as an unreachable gateway (exit 3)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise fail(f"--url must be http:// or https://host[:port]; got {url!r}")
    try:
        parts.port  # noqa: B018  (urlsplit parses the port on access)
    except ValueError:
        raise fail(f"--url has a bad port: {url!r}") from None
    if not parts.hostname:
        raise fail(f"--url names no host: {url!r}")


def _plan(
    speed: float,
    pattern: str,
    rate: float | None,
    since: str | None,
    until: str | None,
    ends_at: str | None,
    batch_size: int,
    seed: int,
) -> ReplayPlan:
    """The pace and stamping of the replay, from its options; bad ones are a clean CLI
    failure."""
    from tastebud.replay import ReplayError, ReplayPlan  # lazy: CLI start-up

    start, end = parse_moment(since, "--from"), parse_moment(until, "--to")
    last = parse_moment(ends_at, "--ends-at")
    try:
        return ReplayPlan(
            speed=speed,
            pattern=pattern,
            rate=rate,
            start=start,
            end=end,
            ends_at=last,
            batch_size=batch_size,
            seed=seed,
        )
    except (ReplayError, ValueError) as error:
        raise fail(str(error)) from None


def _load(
    settings: Settings, path: Path, mapping: list[str] | None, event_type: str, plan: ReplayPlan
) -> tuple[list[Source], LoadedEvents]:
    """The dataset's sources and its valid events in time order; a bad mapping, path or
    file is a clean CLI failure."""
    # lazy: loaders, validation and the client bring pyarrow, numpy and httpx (CLI start-up)
    from tastebud.data.loaders import open_sources
    from tastebud.data.loaders.columns import MappingError, parse_mapping  # lazy: CLI start-up
    from tastebud.replay import ReplayError, load_events  # lazy: CLI start-up

    try:
        sources = open_sources(path, mapping=parse_mapping(mapping), event_type=event_type)
        return sources, load_events(sources, settings, plan)
    except (ReplayError, MappingError, FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None


def _through_gateway(
    url: str,
    key: str | None,
    keep_ids: bool,
    catalog_sources: list[Source],
    loaded: LoadedEvents,
    plan: ReplayPlan,
    settings: Settings,
) -> dict[str, Any]:
    from tastebud.client import TastebudClient  # lazy: httpx (CLI start-up)
    from tastebud.replay import GatewayTarget  # lazy: see above

    with TastebudClient(url, api_key=key, retries=3) as client:
        if not client.healthy():
            raise fail(f"no tastebud gateway answers at {url} (GET /healthz)", EXIT_STORE)
        target = GatewayTarget(client, url, keep_ids=keep_ids)
        return _run(target, catalog_sources, loaded, plan, settings)


def _run(
    target: Target,
    catalog_sources: list[Source],
    loaded: LoadedEvents,
    plan: ReplayPlan,
    settings: Settings,
) -> dict[str, Any]:
    from tastebud.replay import ReplayInterrupted, TargetFailed, replay  # lazy: see above

    catalog: dict[str, Any] = {}
    try:
        for source in catalog_sources:
            outcome = target.send_catalog(source, settings)
            catalog[source.kind] = {"stored": outcome.accepted, "rejected": dict(outcome.rejected)}
    except TargetFailed as error:
        raise fail(f"{error}; no event was sent", EXIT_STORE) from None
    with progress_bar() as bar:
        task = bar.add_task("replay", total=loaded.table.num_rows)
        try:
            report = replay(
                loaded.table,
                target,
                plan,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        except ReplayInterrupted as stopped:
            _print_report(_document(stopped.report, catalog, loaded))
            where = stopped.resume_from.isoformat() if stopped.resume_from else "the start"
            raise fail(
                f"replay stopped after {stopped.report.sent:,} of {stopped.report.total:,} "
                f"events ({stopped.cause}); what was acknowledged is stored: send the rest "
                f"with --from {where}",
                EXIT_INTERRUPTED,
            ) from None
    return _document(report, catalog, loaded)


def _document(report: ReplayReport, catalog: dict[str, Any], loaded: LoadedEvents) -> dict:
    return {
        "read": loaded.rows_read,
        "invalid": loaded.rejected,
        "outside_window": loaded.outside_window,
        "catalog": catalog,
        **report.as_dict(),
    }


def _print_loaded(loaded: LoadedEvents, quiet: bool) -> None:
    if quiet or not loaded.rejected:
        return
    from tastebud.replay.targets import rejection_lines  # lazy: see above

    console.print(
        f"[yellow]{loaded.rejected:,} of {loaded.rows_read:,} rows are not valid events "
        "and will not be sent:[/]"
    )
    for line in rejection_lines(loaded.rejections[:20]):
        console.print(f"  {line}", highlight=False, soft_wrap=True)


def _print_report(document: dict[str, Any]) -> None:
    for kind, counts in document["catalog"].items():
        out.print(f"{kind}: {counts['stored']:,} stored, rejected {counts['rejected'] or 0}")
    rate = document["events_per_second"]
    lag = document["max_lag_seconds"]
    behind = f"; most behind schedule {lag:.2f} s" if lag is not None else ""
    out.print(
        f"sent {document['sent']:,} of {document['total']:,} events in "
        f"{document['seconds']:.1f} s ({rate or 0:,.0f}/s{behind}): "
        f"{document['accepted']:,} stored, {document['duplicates']:,} duplicates, "
        f"{document['rejected']:,} rejected",
        highlight=False,
        soft_wrap=True,
    )
    if document["rejected_by_reason"]:
        out.print(f"rejected by reason: {document['rejected_by_reason']}", highlight=False)
    if document["recorded_from"]:
        out.print(
            f"recorded {document['recorded_from']} .. {document['recorded_to']}, shifted by "
            f"{document['shift_seconds'] / 86400:,.1f} days",
            highlight=False,
        )
