"""``tastebud quickstart``: the main job on the embedded default, from nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tastebud.cli.common import out, settings_from_context, stores_for
from tastebud.cli.data import _print_report, _run, stats
from tastebud.cli.datasets import run_generate
from tastebud.data.loaders import open_sources
from tastebud.data.synthetic import WorldSpec


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
    settings = settings_from_context(ctx)
    folder = out_dir or settings.home / "worlds" / f"quickstart-{seed}"
    out.print(f"[bold]1/3[/] generating a synthetic world in {folder}")
    run_generate(WorldSpec(users=users, items=items, days=days, seed=seed), folder)
    out.print(f"[bold]2/3[/] ingesting it into {settings.resolved_database_url}")
    with stores_for(settings) as stores:
        report = _run(open_sources(folder), stores, settings)
    _print_report(report, show=5)
    out.print("[bold]3/3[/] stats")
    stats(ctx, as_json=False)
