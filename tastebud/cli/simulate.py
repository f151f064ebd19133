"""``tastebud simulate``: the closed-loop user simulator (``tastebud.simulation.loop``).

Against a running gateway (``--url`` and a key with the read and ingest scopes) whose world
``--world`` names (the folder holding its ``truth.json``; default the quickstart world of
this home), or ``--local``: a private home in a temporary folder, the quickstart world of
``--world-users`` x ``--world-items`` generated, ingested and trained there, and the gateway
served in this process for the run, then removed.

Exit codes: 0 the run finished; 2 bad usage (the option is named); 3 the gateway could not
be reached or refused the key.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastebud.cli.common import (
    EXIT_STORE,
    fail,
    out,
    parse_moment,
    progress_bar,
    settings_from_context,
)
from tastebud.cli.simulate_ab import definition_from, report_experiment

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.experiments.analysis import Analysis
    from tastebud.simulation.loop import LoopConfig, LoopSummary
    from tastebud.simulation.users import UserModel

WATCH_SECONDS = 0.25  # --local: how often its workers reread the experiment definitions

UrlOption = Annotated[
    str | None, typer.Option(help="The gateway to drive (http://host:port); or --local.")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key", envvar="TASTEBUD_API_KEY", help="An API key with the read and ingest scopes."
    ),
]
WorldOption = Annotated[
    Path | None,
    typer.Option(
        help="The served world's folder (or its truth.json). Default: this home's quickstart world."
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(help="Generate a quickstart world in a temporary home and serve it here."),
]
ExperimentOption = Annotated[
    Path | None,
    typer.Option(
        help="--local: an experiment definition (YAML or JSON) to create, start, run and "
        "analyze beside the truth (docs/experiments.md)."
    ),
]
ReportOption = Annotated[
    Path | None, typer.Option(help="--experiment: also write its report in this folder.")
]


def simulate(
    ctx: typer.Context,
    url: UrlOption = None,
    key: KeyOption = None,
    world: WorldOption = None,
    local: LocalOption = False,
    days: Annotated[float, typer.Option(help="Simulated days to run.")] = 1.0,
    users: Annotated[int, typer.Option(help="Simulated users (drawn from the world).")] = 50,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (0: as fast as served).")
    ] = 0.0,
    k: Annotated[int, typer.Option(help="Items per list.")] = 10,
    seed: Annotated[int, typer.Option(help="Seeds users, visits and behaviour.")] = 0,
    start: Annotated[
        str | None, typer.Option(help="Simulated start (ISO-8601; default now).")
    ] = None,
    dates: Annotated[
        str,
        typer.Option(
            help="real: events dated when sent (the server's clock, as exposures; what an "
            "analysis needs); simulated: dated in simulated time."
        ),
    ] = "real",
    world_users: Annotated[int, typer.Option(help="--local: users in the world.")] = 300,
    world_items: Annotated[int, typer.Option(help="--local: items in the world.")] = 400,
    world_days: Annotated[int, typer.Option(help="--local: days of history.")] = 14,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    summary_out: Annotated[
        Path | None, typer.Option("--out", help="Also write the summary (JSON) here.")
    ] = None,
    experiment: ExperimentOption = None,
    report: ReportOption = None,
) -> None:
    """Run synthetic users with known tastes against the HTTP API: they ask for lists, look
    at them with position bias, click, play, skip, like and buy by their true preferences;
    prints what each variant served and what the truth says of it."""
    from tastebud.simulation.loop import LoopConfig  # lazy: numpy (CLI start-up)

    settings = settings_from_context(ctx)
    config = _config(LoopConfig, users, days, k, speed, parse_moment(start, "--start"), seed, dates)
    if local == (url is not None):
        raise fail("give either --url (a running gateway) or --local")
    sizes = (world_users, world_items, world_days)
    definition = _check_local(local, world, sizes, experiment, report)
    if local:
        with local_home(settings, *sizes, days) as home:
            if definition is not None:
                return _experiment(home, definition, config, as_json, summary_out, report)
            with serve_local(home.settings) as served_url:
                summary = _run(home.model, served_url, home.key, config)
    else:
        model = _model(world or settings.home / "worlds" / "quickstart-0")
        summary = _run(model, str(url), key, config)
    _report(summary.as_dict(), as_json, summary_out)


def _experiment(
    home: LocalHome,
    definition: dict[str, Any],
    config: LoopConfig,
    as_json: bool,
    summary_out: Path | None,
    report: Path | None,
) -> None:
    summary, analysis, truth = _run_experiment(home, definition, config)
    document = summary.as_dict()
    if not as_json:
        _report(document, False, None)
    document["experiment"] = report_experiment(analysis, truth, as_json, report)
    _write(document, as_json, summary_out)


def _run_experiment(
    home: LocalHome, definition: dict[str, Any], config: LoopConfig
) -> tuple[LoopSummary, Analysis, dict[str, dict[str, Any]]]:
    """Serve, start the experiment, run the loop, stop it; then analyze once the gateway
    has stopped (its exposures written)."""
    import httpx  # lazy: CLI start-up

    from tastebud.client import GatewayError  # lazy: CLI start-up
    from tastebud.experiments.stored import NothingToAnalyze  # lazy: CLI start-up
    from tastebud.simulation import ab  # lazy: numpy (CLI start-up)

    with serve_local(home.settings) as url:
        headers = {"X-API-Key": home.admin_key}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as admin:
            try:
                key = ab.start_experiment(admin, definition, settle_seconds=4 * WATCH_SECONDS)
            except GatewayError as error:
                raise fail(f"--experiment: the gateway refused it: {error}") from None
            summary = _run(home.model, url, home.key, config)
            ab.stop_experiment(admin, key)
    try:
        analysis = ab.analyze_database(home.settings, key, now=datetime.now(UTC))
    except NothingToAnalyze as error:
        raise fail(str(error)) from None
    return summary, analysis, ab.truth_by_variant(summary, key, analysis.control)


def _check_local(
    local: bool,
    world: Path | None,
    sizes: tuple[int, int, int],
    experiment: Path | None,
    report: Path | None,
) -> dict[str, Any] | None:
    """The options only --local takes, checked; the experiment's definition, read."""
    if experiment is not None and not local:
        raise fail("--experiment needs --local (against your own gateway: docs/experiments.md)")
    if report is not None and experiment is None:
        raise fail("--report: only with --experiment")
    if not local:
        return None
    if world is not None:
        raise fail("--world: --local generates its own world; leave --world out")
    for name, value in (("--world-users", sizes[0]), ("--world-items", sizes[1])):
        if value < 2:
            raise fail(f"{name} must be >= 2")
    if sizes[2] < 1:
        raise fail("--world-days must be >= 1")
    return None if experiment is None else definition_from(experiment)


def _config(cls: type[LoopConfig], *args: Any) -> LoopConfig:
    users, days, k, speed, start, seed, dates = args
    names = {"users": "--users", "days": "--days", "k": "--k", "speed": "--speed"}
    try:
        return cls(users=users, days=days, k=k, speed=speed, start=start, seed=seed, dates=dates)
    except ValueError as error:
        text = str(error).removeprefix("invalid LoopConfig: ")
        first = text.split(" ", 1)[0]
        raise fail(f"{names.get(first, '--' + first)}: {text}") from None


def _model(world: Path) -> UserModel:
    from tastebud.simulation.users import UserModel  # lazy: numpy (CLI start-up)

    truth = world / "truth.json" if world.is_dir() else world
    if not truth.is_file():
        raise fail(f"--world: no truth.json at {truth} (generate or quickstart a world first)")
    try:
        return UserModel.from_truth(truth)
    except (ValueError, OSError) as error:
        raise fail(f"--world: {error}") from None


def _run(model: UserModel, url: str, key: str | None, config: LoopConfig) -> LoopSummary:
    import httpx  # lazy: CLI start-up

    from tastebud.client import GatewayError  # lazy: CLI start-up
    from tastebud.simulation.loop import run_loop  # lazy: numpy (CLI start-up)

    try:
        with progress_bar() as bar:
            task = bar.add_task("visits", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return run_loop(model, url, key, config, progress=advance)
    except GatewayError as error:
        raise fail(f"the gateway at {url} refused: {error}", EXIT_STORE) from None
    except (httpx.HTTPError, ValueError) as error:
        raise fail(f"could not reach the gateway at {url}: {error}", EXIT_STORE) from None


def _write(document: dict[str, Any], as_json: bool, path: Path | None) -> None:
    """The JSON document to ``path`` and, with ``--json``, to stdout."""
    text = json.dumps(document, indent=1)
    if path is not None:
        path.write_text(text + "\n")
    if as_json:
        out.print_json(text)


def _report(summary: dict[str, Any], as_json: bool, path: Path | None) -> None:
    if as_json or path is not None:
        _write(summary, as_json, path)
    if as_json:
        return
    events = summary["events"]
    out.print(
        f"{summary['requests']:,} lists requested ({summary['failed_requests']} failed, "
        f"{summary['with_list_id']:,} with a list_id) from {summary['start']} to "
        f"{summary['end']}; {events['sent']:,} events sent, {events['accepted']:,} accepted, "
        f"{events['rejected']:,} rejected {events['rejections'] or ''}",
        soft_wrap=True,
    )
    for name, variant in summary["variants"].items():
        ctr, true_ctr = variant["click_through"], variant["true_click_through"]
        out.print(
            f"  {name}: {variant['users']} users, {variant['lists']} lists, "
            f"click-through {_pct(ctr)} (truth {_pct(true_ctr)}), "
            f"true utility per user {_num(variant['true_utility_per_user'])}",
            soft_wrap=True,
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class LocalHome:
    """A temporary home with a quickstart world: its settings, the world's user model and
    two API keys (read+ingest for the users, admin for the experiment)."""

    settings: Settings
    model: UserModel
    key: str
    admin_key: str


@contextmanager
def local_home(
    settings: Settings, users: int, items: int, days: int, run_days: float
) -> Iterator[LocalHome]:
    """A temporary home holding a quickstart world (generated, ingested, trained, jobs run;
    its progress goes to stderr); removed afterwards.

    Its gateway accepts events dated up to the whole run ahead of its clock (what ``--dates
    simulated`` sends at a speed above 1), and its workers reread experiment definitions
    every ``WATCH_SECONDS`` (a started experiment is served at once)."""
    import click  # lazy: CLI start-up

    from tastebud.cli.quickstart import quickstart  # lazy: CLI start-up
    from tastebud.config import load_settings  # lazy: CLI start-up
    from tastebud.stores import open_database  # lazy: CLI start-up

    home = Path(tempfile.mkdtemp(prefix="tastebud-simulate-"))
    try:
        ahead = max(settings.events.max_future_seconds, run_days * 86_400 + 3_600)
        rules = settings.events.model_dump() | {"max_future_seconds": ahead}
        watch = settings.experiments.model_dump() | {"poll_seconds": WATCH_SECONDS}
        local = load_settings(
            home=home, database_url=None, online_url=None, events=rules, experiments=watch
        )
        context = click.Context(click.Command("quickstart"), obj={"settings": local})
        with _to_stderr():
            quickstart(context, users=users, items=items, days=days, serve=False)  # type: ignore[arg-type]
        with open_database(local.resolved_database_url) as database:
            keys = [
                database.gateway.keys.create(scopes, "simulate", rate_per_second=1e6, burst=1e6)
                for scopes in (["read", "ingest"], ["admin"])
            ]
        assert keys[0] is not None and keys[1] is not None
        model = _model(home / "worlds" / "quickstart-0")
        yield LocalHome(local, model, keys[0][1], keys[1][1])
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def serve_local(settings: Settings) -> Iterator[str]:
    """The gateway of ``settings`` served in this process on a free port: yields its URL;
    stops it on the way out (its exposures flushed)."""
    import uvicorn  # lazy: CLI start-up

    from tastebud.api.app import create_app  # lazy: CLI start-up

    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise fail("the local gateway did not start", EXIT_STORE)
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def _to_stderr() -> Iterator[None]:
    """The quickstart's progress on stderr, so stdout holds only the summary (``--json``)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
