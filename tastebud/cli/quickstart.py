"""``tastebud quickstart`` (what ``make run`` runs): a synthetic world that ends now, in the
embedded default, with everything a user would run on it, then the server in the foreground.

1. the world: generated to end at the current UTC minute, or the one this store already
   holds (``quickstart/world.json`` in the artifact store records it), so a later run
   (days later too) reuses the same world and its files rather than mixing in another;
2. ingest (skipped when the recorded world is already stored; idempotent anyway);
3. one line of stats; 4. the default model, unless production was trained on these events;
5. the jobs (popularity, trending, affinity, materialize, recommendations) as of the data
   clock: now while the world is fresh, its newest event once it is historical;
6. two real users (their last items, their recommendations with titles and explanations,
   as HTTP serves them) and what is trending;
7. the server on this world, with its URL, a read key and a ``curl`` that works at once
   (``--no-serve`` stops before: tests and scripts).
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastebud.cli.common import (
    clock_for,
    console,
    fail,
    out,
    parse_moment,
    settings_from_context,
    stores_for,
)
from tastebud.cli.data import _print_report, _run
from tastebud.cli.datasets import run_generate

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.synthetic import WorldSpec
    from tastebud.stores import Stores

MARKER = "quickstart/world.json"
# Trends strong enough to be seen in a 2,000-user world (the 95th-99th popularity
# percentile, x12 on average), two of them starting on the last day: "trending now" has
# something to show. Measured in docs/benchmarks.md (trend recovery on the quickstart world).
TRENDS = {"trending_items": 8, "trending_band": (0.95, 0.99), "trending_at_end": 2}
# embed first: serving's content candidates and MMR diversity need the item embeddings.
JOBS = ("embed", "popularity", "trending", "affinity", "materialize", "recommendations")
STEPS = 7


EndOption = Annotated[
    str | None,
    typer.Option(
        help="When the world ends (ISO-8601). Default: now for a new world, the recorded "
        "end for the world this store already holds."
    ),
]
WorldOut = Annotated[
    Path | None,
    typer.Option("--out", help="Where the world goes (default $TASTEBUD_HOME/worlds/)."),
]
ServeOption = Annotated[
    bool, typer.Option("--serve/--no-serve", help="Serve the world in the foreground.")
]
PortOption = Annotated[
    int | None,
    typer.Option(help="Port (default 8000, or a free one when 8000 is taken; 0: any)."),
]


def quickstart(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1)] = 2000,
    items: Annotated[int, typer.Option(min=1)] = 3000,
    days: Annotated[int, typer.Option(min=1)] = 30,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    end: EndOption = None,
    out_dir: WorldOut = None,
    serve: ServeOption = True,
    host: Annotated[str | None, typer.Option(help="Address to serve on (default 127.0.0.1).")] = (
        None
    ),
    port: PortOption = None,
) -> None:
    """Generate a world that ends now, ingest it, train, run the jobs, show two users'
    recommendations and what trends, then serve it (Ctrl-C stops).

    Safe to run again, days later too: the store keeps its world (same ids, stored once)
    and the jobs run as of its newest event once it is in the past."""
    settings = settings_from_context(ctx)
    fields: dict[str, Any] = {"users": users, "items": items, "days": days, "seed": seed, **TRENDS}
    end_at = parse_moment(end, "--end")
    folder = out_dir or settings.home / "worlds" / f"quickstart-{seed}"
    with stores_for(settings) as stores:
        spec = _world(settings, stores, fields, end_at, folder)
        if spec is not None:
            out.print(
                f"[bold]2/{STEPS}[/] ingesting it into {settings.resolved_database_url}",
                soft_wrap=True,
            )
            _ingest(settings, stores, spec, folder)
        out.print(f"[bold]3/{STEPS}[/] {_summary(stores)}", soft_wrap=True)
        out.print(f"[bold]4/{STEPS}[/] the default model", soft_wrap=True)
        train_production(settings, stores)
    from tastebud.cli import first_hour  # lazy: CLI start-up

    clock = clock_for(settings)
    out.print(f"[bold]5/{STEPS}[/] the jobs, {clock.describe()}", soft_wrap=True)
    first_hour.run_jobs(settings, JOBS, clock.as_of)
    out.print(f"[bold]6/{STEPS}[/] what tastebud serves", soft_wrap=True)
    with stores_for(settings) as stores:
        shown = first_hour.show(settings, stores, clock.as_of)
        users_file = first_hour.write_users(stores, clock.as_of, folder / "users.txt", shown)
    _next_steps(users_file)
    if not serve:
        return
    out.print(f"[bold]7/{STEPS}[/] serving this world (Ctrl-C stops)", soft_wrap=True)
    first_hour.serve_foreground(settings, host, port, shown[0] if shown else None)


def _world(
    settings: Settings,
    stores: Stores,
    fields: dict[str, Any],
    end_at: datetime | None,
    folder: Path,
) -> WorldSpec | None:
    """Step 1: the world to ingest (None: the store holds an older quickstart world that is
    used as it is). Refuses to mix a second world into a store holding one."""
    from tastebud.data.synthetic import WorldSpec, now_minute  # lazy: numpy (CLI start-up)

    marker = read_marker(stores)
    recorded = marker["fields"] if marker else None
    if marker is not None and _comparable(recorded) != _comparable(fields):
        raise fail(
            f"this store already holds the quickstart world {marker['world_id']} "
            f"({_shape(recorded)}); a world of another shape would mix with it (the same "
            f"user and item ids). Run with the same options, or set TASTEBUD_HOME to a new "
            "folder for another world."
        )
    if marker is not None:
        recorded_end = datetime.fromisoformat(marker["end"])
        if end_at is not None and end_at != recorded_end:
            raise fail(
                f"this store already holds the quickstart world ending {marker['end']}; one "
                "ending elsewhere would be a second copy of it. Drop --end, or set "
                "TASTEBUD_HOME to a new folder."
            )
        end_at = recorded_end
    elif end_at is None and stores.events.existing_ids([f"syn{fields['seed']}-0000000000"]):
        out.print(
            f"[bold]1/{STEPS}[/] this store holds the quickstart world of an earlier tastebud "
            f"(events syn{fields['seed']}-…, dated 2025). It is used as it is, as a historical "
            f"store; for a world that ends today, remove {settings.home} (or set TASTEBUD_HOME "
            "to a new folder) and run again.",
            soft_wrap=True,
        )
        return None
    spec = WorldSpec.ending(end_at or now_minute(), **fields)
    reused = marker is not None
    age = now_minute() - spec.end
    when = f"ends {spec.end.isoformat()}" + (f", {_ago(age.total_seconds())}" if reused else "")
    if _files_hold(folder, spec):
        out.print(
            f"[bold]1/{STEPS}[/] the world {spec.world_id} in {folder} ({when})", soft_wrap=True
        )
    else:
        out.print(
            f"[bold]1/{STEPS}[/] generating the world {spec.world_id} in {folder} ({when})",
            soft_wrap=True,
        )
        run_generate(spec, folder)
    if marker is None or not marker.get("ingested"):
        write_marker(stores, spec, fields, ingested=False)
    return spec


def _comparable(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON round trip (tuples become lists) so a recorded and a new spec compare equal."""
    return None if fields is None else json.loads(json.dumps(fields))


def _shape(fields: dict[str, Any] | None) -> str:
    fields = fields or {}
    return (
        f"{fields.get('users')} users, {fields.get('items')} items, {fields.get('days')} days, "
        f"seed {fields.get('seed')}"
    )


def _files_hold(folder: Path, spec: WorldSpec) -> bool:
    """Whether the world's files are there already (a complete world writes truth.json last)."""
    try:
        truth = json.loads((folder / "truth.json").read_text())
    except (OSError, ValueError):
        return False
    return truth.get("world_id") == spec.world_id and all(
        (folder / name).is_file() for name in ("events.parquet", "items.parquet", "users.parquet")
    )


def read_marker(stores: Stores) -> dict[str, Any] | None:
    """The quickstart world this store holds, as ``write_marker`` recorded it."""
    from tastebud.stores import ArtifactNotFound  # lazy: the stores bring pyarrow

    try:
        return json.loads(stores.artifacts.get_bytes(MARKER))  # type: ignore[no-any-return]
    except (ArtifactNotFound, FileNotFoundError):
        return None


def write_marker(
    stores: Stores, spec: WorldSpec, fields: dict[str, Any], *, ingested: bool
) -> None:
    """Recorded before the ingest (so a crash midway reruns the same world, whose events the
    store keeps once) and again after it."""
    document = {
        "world_id": spec.world_id,
        "fields": fields,
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
        "ingested": ingested,
    }
    stores.artifacts.put_bytes(MARKER, json.dumps(document, indent=1).encode())


def _ingest(settings: Settings, stores: Stores, spec: WorldSpec, folder: Path) -> None:
    from tastebud.data.loaders import open_sources  # lazy: pyarrow (CLI start-up)

    marker = read_marker(stores)
    recorded = marker is not None and marker.get("ingested") and marker["world_id"] == spec.world_id
    # The marker lives with the artifacts: check the events are still there too.
    if recorded and stores.events.existing_ids([f"{spec.world_id}-{0:010d}"]):
        out.print("  already stored: nothing to ingest")
        return
    report = _run(open_sources(folder), stores, settings)
    _print_report(report, show=5)
    write_marker(stores, spec, marker["fields"] if marker else {}, ingested=True)


def _summary(stores: Stores) -> str:
    stats = stores.events.stats()
    span = ""
    if stats.first is not None and stats.last is not None:
        span = f", {stats.first:%Y-%m-%d %H:%M} → {stats.last:%Y-%m-%d %H:%M} UTC"
    return (
        f"{stats.events:,} events from {stats.users:,} users on {stats.items:,} items{span} "
        "(`tastebud stats` for more)"
    )


def train_production(settings: Settings, stores: Stores) -> str:
    """Train the default configuration on the store and register it as production, unless
    production was trained on exactly these events; returns the production version."""
    # Imported here, not at the top: training brings numpy, implicit... (CLI start-up).
    from tastebud.data.interactions import read_event_store  # lazy: CLI start-up
    from tastebud.registry import RegistryError, open_registry  # lazy: CLI start-up
    from tastebud.training.pipeline import register_training, train  # lazy: CLI start-up

    log = read_event_store(stores.events)
    registry = open_registry(settings, stores.artifacts)
    try:
        current = registry.get("production")
    except RegistryError:
        current = None
    if current is not None and current.model_dump().get("snapshot") == log.snapshot:
        out.print(f"  production model {current.model_version} is up to date", soft_wrap=True)
        return current.model_version
    result = train(log, event_types=settings.events.types)
    version = register_training(result, log, registry, aliases=["production"]).model_version
    out.print(
        f"  registered {result.configuration.model} model {version} as production "
        f"({result.matrix.shape[0]:,} users x {result.matrix.shape[1]:,} items, "
        f"fitted in {result.timings['fit_seconds']:.1f}s)"
    )
    return version


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(0, round(seconds / 60))} min ago"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86_400:.0f} days ago"


def _command() -> str:
    """How this shell reaches tastebud: plain ``tastebud`` when it is on PATH, else the path
    of the running script (``make run`` calls ``.venv/bin/tastebud``)."""
    if shutil.which("tastebud"):
        return "tastebud"
    script = Path(sys.argv[0])
    if script.name == "tastebud" and script.exists():
        try:
            return str(script.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(script.resolve())
    return f"{sys.executable} -m tastebud"


def _next_steps(users_file: Path) -> None:
    command = _command()
    if command != "tastebud":
        console.print(
            f"[bold]tastebud is not on PATH[/]: call {command}, or `source "
            f"{Path(command).parent / 'activate'}` first."
            if command.endswith("/tastebud")
            else f"[bold]tastebud is not on PATH[/]: call {command}.",
            soft_wrap=True,
        )
    out.print(
        "next:\n"
        f"  {command} recommend --model production --users {users_file} --out recs.csv\n"
        f"  {command} jobs history      {command} stats      {command} serve",
        soft_wrap=True,
        highlight=False,
    )
