"""``tastebud features list|describe|materialize|backfill|parity|get``.

``materialize`` and ``backfill`` run in this process (``tastebud jobs run materialize`` is
the scheduled path, with run history and a lock). ``materialize`` without ``--end`` runs as
of the data clock (now, or the newest event of a historical store; ``tastebud.jobs.clock``).
Exit codes: 0 done, 1 parity above its target, 2 bad usage or a bad manifest, 3 a store
unreachable, 5 refused: too few recent events (the online values keep serving).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tastebud.cli.common import (
    EXIT_REFUSED,
    EXIT_STORE,
    clock_for,
    console,
    fail,
    out,
    parse_moment,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.features.store import FeatureStore
    from tastebud.features.views import FeatureRegistry

app = typer.Typer(help="The feature store: views, materialization, parity.", no_args_is_help=True)

ViewOption = Annotated[
    list[str] | None, typer.Option("--view", help="Only this view (repeatable).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


def _registry(settings: Settings) -> FeatureRegistry:
    # Imported here, not at the top: the feature store brings pyarrow (CLI start-up).
    from tastebud.features.store import load_registry  # lazy: CLI start-up
    from tastebud.features.views import ManifestError  # lazy: CLI start-up

    try:
        return load_registry(settings)
    except ManifestError as error:
        raise fail(escape(f"invalid feature manifest: {error}")) from None


@contextmanager
def _feature_store(ctx: typer.Context) -> Iterator[tuple[Settings, Any, FeatureStore]]:
    # Imported here, not at the top: pyarrow, DuckDB (CLI start-up).
    from tastebud.features.compute import TransformError  # lazy: CLI start-up
    from tastebud.features.offline import FeatureVersionConflict  # lazy: CLI start-up
    from tastebud.features.store import open_feature_store  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    _registry(settings)
    with stores_for(settings) as stores:
        try:
            features = open_feature_store(settings, stores.online)
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
        try:
            yield settings, stores, features
        except (StoreError, FeatureVersionConflict) as error:
            raise fail(escape(str(error)), EXIT_STORE) from None
        except (TransformError, KeyError, ValueError) as error:
            raise fail(escape(str(error).strip('"'))) from None
        finally:
            features.close()


@app.command("list")
def list_views(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every feature view: entity, version, features, TTL, source."""
    registry = _registry(settings_from_context(ctx))
    rows = [
        {
            "view": view.name,
            "version": view.version,
            "entity": view.entity,
            "features": view.feature_names,
            "ttl_seconds": view.ttl_seconds,
            "source": view.source.kind,
            "owner": view.owner,
        }
        for view in registry.ordered()
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="feature views")
    for column in ("view", "version", "entity", "features", "ttl", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["view"],
            row["version"],
            row["entity"],
            ", ".join(row["features"]),
            f"{row['ttl_seconds'] / 3600:g} h",
            row["source"],
        )
    out.print(table)


@app.command("describe")
def describe(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="A feature view.")]
) -> None:
    """A view's full definition (as JSON), with its fingerprint and manifest file."""
    registry = _registry(settings_from_context(ctx))
    if name not in registry.views:
        raise fail(f"unknown feature view {name!r}; known: {', '.join(sorted(registry.views))}")
    view = registry.view(name)
    document = {
        **view.model_dump(),
        "fingerprint": view.fingerprint,
        "manifest": registry.sources.get(name),
    }
    out.print_json(json.dumps(document))


@app.command("materialize")
def materialize_command(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option(help="Interval start (ISO-8601).")] = None,
    end: Annotated[
        str | None,
        typer.Option(
            help="Interval end (the snapshot's as-of). Default: now, or the newest event when "
            "the store is historical."
        ),
    ] = None,
    view: ViewOption = None,
    no_compute: Annotated[
        bool, typer.Option("--no-compute", help="Only publish what the offline store has.")
    ] = False,
) -> None:
    """Compute each view as of END into the offline store, then publish to the online store
    everything since the watermark (minus the overlap); moves the watermark to END.

    Refused (exit 5) when the 30 days before END hold fewer than features.min_recent_events
    events: every event-based view would come out empty."""
    # lazy: CLI start-up
    from tastebud.features.materialize import SUPPORT_DAYS, materialize, recent_support

    end_at = parse_moment(end, "--end")
    if end_at is None:
        clock = clock_for(settings_from_context(ctx))
        end_at = clock.as_of
        if clock.historical:
            console.print(f"[yellow]note[/] {clock.describe()}")
    start_at = parse_moment(start, "--start")
    if start_at is not None and start_at >= end_at:
        raise fail("--start must be before --end")
    with _feature_store(ctx) as (settings, stores, features):
        events = recent_support(stores, end_at)
        needed = settings.features.min_recent_events
        if events < needed and not no_compute:
            console.print(
                f"[yellow]refused[/] {events:,} events in the {SUPPORT_DAYS} days before "
                f"{end_at.isoformat()}; materializing needs at least {needed:,}. The online "
                "values keep serving; pass --end (e.g. the newest event) for data that ends "
                "in the past."
            )
            raise typer.Exit(EXIT_REFUSED)
        report = materialize(
            features,
            settings,
            stores,
            start=start_at,
            end=end_at,
            views=view,
            compute=not no_compute,
        )
    out.print_json(json.dumps(report, default=str))


@app.command("backfill")
def backfill_command(
    ctx: typer.Context,
    start: Annotated[str, typer.Option(help="Range start (ISO-8601).")],
    end: Annotated[str, typer.Option(help="Range end (ISO-8601).")],
    step_hours: Annotated[float, typer.Option(help="Hours between snapshots.", min=0.01)] = 24.0,
    view: ViewOption = None,
) -> None:
    """Offline snapshots every STEP over (START, END], for point-in-time training data."""
    from tastebud.features.materialize import backfill  # lazy: CLI start-up

    start_at, end_at = parse_moment(start, "--start"), parse_moment(end, "--end")
    assert start_at is not None and end_at is not None
    with _feature_store(ctx) as (settings, stores, features):
        report = backfill(
            features,
            settings,
            stores,
            start=start_at,
            end=end_at,
            step=timedelta(hours=step_hours),
            views=view,
        )
    out.print_json(json.dumps(report, default=str))


@app.command("parity")
def parity_command(
    ctx: typer.Context,
    sample: Annotated[int, typer.Option(help="Entities sampled per view.", min=1)] = 500,
    view: ViewOption = None,
) -> None:
    """Compare sampled online values with the offline store; exit 1 above the 2% target."""
    from tastebud.features.parity import run_parity  # lazy: CLI start-up

    with _feature_store(ctx) as (settings, _, features):
        report = run_parity(
            features, sample=sample, tolerance=settings.features.parity_tolerance, views=view
        )
    out.print_json(json.dumps(report, default=str))
    if report["diff_rate"] is not None and report["diff_rate"] > report["target"]:
        raise typer.Exit(1)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Each view's watermark and seconds since its last materialization."""
    from tastebud.features.materialize import watermark  # lazy: CLI start-up

    with _feature_store(ctx) as (_, __, features):
        ages = features.service.refresh_freshness()
        rows = {
            name: {
                "watermark": str(watermark(features, features.registry.view(name))),
                "freshness_seconds": age,
            }
            for name, age in ages.items()
        }
    out.print_json(json.dumps(rows))


@app.command("get")
def get(
    ctx: typer.Context,
    features_refs: Annotated[list[str], typer.Argument(help="view:feature or view:*")],
    user: Annotated[list[str] | None, typer.Option(help="A user id (repeatable).")] = None,
    item: Annotated[list[str] | None, typer.Option(help="An item id (repeatable).")] = None,
) -> None:
    """Online values, as serving reads them (with the fallback)."""
    keys = {"user": user or [], "item": item or []}
    with _feature_store(ctx) as (_, __, features):
        result = features.service.get_online_features(keys, features_refs)
    out.print_json(json.dumps(result.__dict__, default=str))
