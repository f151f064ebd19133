"""``tastebud quickstart``: the main job on the embedded default, from nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tastebud.cli.common import out, settings_from_context, stores_for
from tastebud.cli.data import _print_report, _run, stats
from tastebud.cli.datasets import run_generate

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.stores import Stores


def quickstart(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1)] = 2000,
    items: Annotated[int, typer.Option(min=1)] = 3000,
    days: Annotated[int, typer.Option(min=1)] = 30,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where the world goes (default $TASTEBUD_HOME/worlds/)."),
    ] = None,
) -> None:
    """Generate a synthetic world, ingest it into the stores and print their stats.

    Safe to run again: the same seed gives the same events, which the store keeps once."""
    # Imported here, not at the top: numpy and pyarrow (CLI start-up).
    from tastebud.data.loaders import open_sources
    from tastebud.data.synthetic import WorldSpec

    settings = settings_from_context(ctx)
    folder = out_dir or settings.home / "worlds" / f"quickstart-{seed}"
    out.print(f"[bold]1/4[/] generating a synthetic world in {folder}")
    run_generate(WorldSpec(users=users, items=items, days=days, seed=seed), folder)
    out.print(f"[bold]2/4[/] ingesting it into {settings.resolved_database_url}")
    with stores_for(settings) as stores:
        report = _run(open_sources(folder), stores, settings)
    _print_report(report, show=5)
    out.print("[bold]3/4[/] stats")
    stats(ctx, as_json=False)
    out.print("[bold]4/4[/] training the default model")
    with stores_for(settings) as stores:
        train_and_show(settings, stores)


def train_and_show(settings: Settings, stores: Stores) -> None:
    """Train the default configuration on the store, register it as production (unless the
    production model was trained on exactly these events) and show one user's list."""
    # Imported here, not at the top: training brings numpy, implicit... (CLI start-up).
    from tastebud.data.interactions import read_event_store
    from tastebud.models import Recommender
    from tastebud.registry import RegistryError, open_registry
    from tastebud.training.pipeline import register_training, train

    log = read_event_store(stores.events)
    registry = open_registry(settings, stores.artifacts)
    try:
        current = registry.get("production")
    except RegistryError:
        current = None
    if current is not None and current.model_dump().get("snapshot") == log.snapshot:
        version = current.model_version
        out.print(f"production model {version} is up to date")
    else:
        result = train(log, event_types=settings.events.types)
        version = register_training(result, log, registry, aliases=["production"]).model_version
        out.print(
            f"registered {result.configuration.model} model {version} as production "
            f"({result.matrix.shape[0]:,} users x {result.matrix.shape[1]:,} items, "
            f"fitted in {result.timings['fit_seconds']:.1f}s)"
        )
    model = registry.load("production", Recommender.load)
    user = model.users_.id_of([0])[0]
    ids, scores = model.recommend([user], 5)
    listed = ", ".join(
        f"{item} ({score:.3f})" for item, score in zip(ids[0], scores[0], strict=True) if item
    )
    out.print(f"top 5 for {user}: {listed}")
    out.print("next: tastebud recommend --model production --users users.txt --out recs.csv")
