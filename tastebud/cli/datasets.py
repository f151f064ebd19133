"""``tastebud datasets``: list, fetch and generate datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tastebud.cli.common import fail, out, parse_moment, progress_bar, settings_from_context

if TYPE_CHECKING:
    from tastebud.data.synthetic import WorldSpec, WorldSummary

app = typer.Typer(help="Public datasets and the synthetic world generator.", no_args_is_help=True)


@app.command("list")
def list_datasets() -> None:
    """The public datasets `fetch` knows."""
    from tastebud.data.fetch import DATASETS  # lazy: pooch and friends (CLI start-up)

    table = Table("name", "description", "url")
    for spec in DATASETS.values():
        table.add_row(spec.name, spec.description, spec.url)
    out.print(table)


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name (see `tastebud datasets list`).")],
    cache_dir: Annotated[Path | None, typer.Option(help="Where to keep datasets.")] = None,
    mirror: Annotated[str | None, typer.Option(help="Base URL to download from instead.")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
) -> None:
    """Download a public dataset into the cache and print its folder."""
    from tastebud.data.fetch import FetchError, fetch_dataset  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with progress_bar() as bar:
        task = bar.add_task(f"fetch {name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        try:
            folder = fetch_dataset(
                name,
                cache_dir or settings.resolved_datasets_cache,
                mirror=mirror or settings.datasets_mirror,
                force=force,
                progress=progress,
            )
        except FetchError as error:
            raise fail(str(error)) from None
    out.print(str(folder))


def run_generate(spec: WorldSpec, out_dir: Path) -> WorldSummary:
    from tastebud.data.synthetic import estimate_events, generate_world  # lazy: numpy, pyarrow

    with progress_bar() as bar:
        task = bar.add_task(f"generate ~{estimate_events(spec):,} events", total=spec.days)
        return generate_world(spec, out_dir, lambda done, _: bar.update(task, completed=done))


@app.command("generate")
def generate(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the parquet files and truth.json.")
    ],
    users: Annotated[int, typer.Option(min=1, help="Users over the whole period.")] = 1000,
    items: Annotated[int, typer.Option(min=1, help="Items over the whole period.")] = 2000,
    days: Annotated[int, typer.Option(min=1, help="Days simulated.")] = 30,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (same seed, same world).")] = 0,
    events_per_user_day: Annotated[
        float, typer.Option(min=0.01, help="Mean events per active user per day.")
    ] = 5.0,
    end: Annotated[
        str | None,
        typer.Option(
            help="When the world ends (ISO-8601 or epoch seconds). Default: now, to the minute. "
            "Same seed and end: byte-identical files."
        ),
    ] = None,
) -> None:
    """Write a seeded synthetic world with known structure (events, items, users, truth),
    ending now unless --end says otherwise."""
    # lazy: numpy, pyarrow (CLI start-up)
    from tastebud.data.synthetic import WorldSpec, now_minute

    end_at = parse_moment(end, "--end") or now_minute()
    try:
        spec = WorldSpec.ending(
            end_at,
            users=users,
            items=items,
            days=days,
            seed=seed,
            events_per_user_day=events_per_user_day,
        )
    except ValueError as error:
        raise fail(str(error)) from None
    summary = run_generate(spec, out_dir)
    out.print(
        f"wrote {summary.events:,} events, {summary.items:,} items, {summary.users:,} users"
        f" from {spec.start.isoformat()} to {spec.end.isoformat()} into {summary.out_dir}"
    )
