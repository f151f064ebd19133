"""``tastebud jobs list|run|history`` and ``tastebud scheduler``.

``jobs run NAME --start T --end T`` is the unit an orchestrator calls once per interval
(see ``examples/airflow_dag.py``). Without an interval it runs the schedule's latest one at
the data clock (``tastebud.jobs.clock``: now, or the newest event of a historical store), or
at ``--as-of``. Exit codes: 0 done (or skipped), 1 the job failed, 2 bad usage (unknown job,
not available yet, bad interval), 3 store unreachable, 4 the job is already running
elsewhere, 5 refused: too little data in the window, the previous result keeps serving.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tastebud.cli.common import (
    EXIT_REFUSED,
    EXIT_STORE,
    EXIT_USAGE,
    clock_for,
    console,
    fail,
    out,
    parse_moment,
    settings_from_context,
)

if TYPE_CHECKING:
    from datetime import datetime

    from tastebud.config import Settings
    from tastebud.jobs import RunHistory
    from tastebud.jobs.roster import JobRegistry
    from tastebud.jobs.runner import RunOutcome

EXIT_FAILED = 1
EXIT_RUNNING = 4

app = typer.Typer(
    help="Batch jobs: list, run one interval, show run history.", no_args_is_help=True
)


def registry_for(settings: Settings) -> JobRegistry:
    # Imported here, not at the top: the jobs package brings the stores (CLI start-up).
    from tastebud.jobs.definitions import build_registry  # lazy: CLI start-up
    from tastebud.stores.retry import RetryPolicy  # lazy: CLI start-up

    jobs = settings.jobs
    return build_registry(
        RetryPolicy(
            max_attempts=jobs.max_attempts,
            base_seconds=jobs.retry_base_seconds,
            cap_seconds=jobs.retry_cap_seconds,
        ),
        settings,
    )


def data_version(settings: Settings) -> int | None:
    """The event store's log position, for the scheduler's refused-job check."""
    from tastebud.stores import open_database  # lazy: CLI start-up

    with open_database(settings.resolved_database_url) as database:
        return database.events.last_seq()


def describe_outcome(outcome: RunOutcome) -> str:
    """One line: the status, the interval and the summary (or the refusal's reason)."""
    interval = f"[{outcome.start.isoformat()}, {outcome.end.isoformat()})"
    if outcome.status == "refused":
        return f"[yellow]refused[/] {outcome.job_name} {interval}: {outcome.error}"
    return (
        f"[green]{outcome.status}[/] {outcome.job_name} {interval} in {outcome.attempts} "
        f"attempt(s): {json.dumps(outcome.output, default=str)}"
    )


def with_engine(settings: Settings, name: str, engine: str) -> Settings:
    """``settings`` with job ``name`` on ``engine``; a usage error when it cannot run there."""
    from tastebud.engines import ENGINES, SPARK_JOBS  # lazy: pyarrow (CLI start-up)

    if engine not in ENGINES:
        raise fail(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "spark" and name not in SPARK_JOBS:
        raise fail(
            f"{name} has no Spark implementation; jobs that run on Spark: "
            f"{', '.join(sorted(SPARK_JOBS))}"
        )
    jobs = settings.jobs.model_copy(update={"engines": {**settings.jobs.engines, name: engine}})
    return settings.model_copy(update={"jobs": jobs})


@contextmanager
def history_for(settings: Settings) -> Iterator[RunHistory]:
    from tastebud.jobs import open_run_history  # lazy: stores (CLI start-up)
    from tastebud.stores import StoreError  # lazy: CLI start-up

    try:
        history = open_run_history(settings)
    except StoreError as error:
        raise fail(str(error), EXIT_STORE) from None
    try:
        yield history
    finally:
        history.close()


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every job, its schedule, timeout and whether it can run yet."""
    settings = settings_from_context(ctx)
    rows: list[dict[str, Any]] = [
        {
            "name": job.name,
            "schedule": job.schedule.describe(),
            "timeout_seconds": job.timeout_seconds,
            "max_attempts": job.retry.max_attempts,
            "available": job.available,
            "status": "available" if job.available else f"not available yet: {job.reason}",
            "description": job.description,
        }
        for job in registry_for(settings)
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="jobs")
    for column in ("name", "schedule", "timeout", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["schedule"],
            f"{row['timeout_seconds']:g} s",
            row["status"] if not row["available"] else "[green]available[/]",
        )
    out.print(table)


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Run the schedule's latest interval as if the clock read this. Default: now, "
        "or the newest event when the store is historical (jobs.historical_after_hours).",
    ),
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        help="Where the job runs: local or spark (the jobs docs/spark.md lists). "
        "Default: [jobs] engines / engine.",
    ),
]


@app.command("run")
def run_job(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job to run (see `tastebud jobs list`).")],
    start: Annotated[
        str | None, typer.Option(help="Interval start, inclusive (ISO-8601 or epoch seconds).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="Interval end, exclusive. Default: the schedule's latest interval."),
    ] = None,
    as_of: AsOfOption = None,
    engine: EngineOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Run one job over one data interval [start, end), with its retries and timeout.

    Exit 5 when the run is refused for too little data (the previous result keeps serving)."""
    # Imported here, not at the top: the runner brings the stores (CLI start-up).
    from tastebud.jobs import JobNotAvailable, UnknownJob  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    start_at, end_at = parse_moment(start, "--start"), parse_moment(end, "--end")
    as_of_at = parse_moment(as_of, "--as-of")
    if as_of_at is not None and (start_at is not None or end_at is not None):
        raise fail("--as-of picks the interval itself: give it or --start/--end, not both")
    registry = registry_for(settings)
    try:
        registry.runnable(name)
    except (UnknownJob, JobNotAvailable) as error:
        raise fail(str(error)) from None
    if engine is not None:
        settings = with_engine(settings, name, engine)
    if start_at is None and end_at is None:
        clock = clock_for(settings, as_of_at)
        as_of_at = clock.as_of
        if clock.historical and not as_json:
            console.print(f"[yellow]note[/] {clock.describe()}")
    outcome = _run_once(settings, registry, name, start_at, end_at, as_of_at, as_json)
    if as_json:
        out.print_json(json.dumps(outcome.__dict__, default=str))
    else:
        out.print(describe_outcome(outcome), highlight=False, soft_wrap=True)
    if outcome.status == "refused":
        raise typer.Exit(EXIT_REFUSED)


def _run_once(
    settings: Settings,
    registry: JobRegistry,
    name: str,
    start_at: datetime | None,
    end_at: datetime | None,
    as_of_at: datetime | None,
    as_json: bool,
) -> RunOutcome:
    """Run the job with its retries; each way a run can fail is a failure with its own exit
    code (a failed run's outcome is printed first under ``--json``)."""
    # lazy: the runner brings the stores (CLI start-up)
    from tastebud.jobs import InvalidInterval, JobAlreadyRunning, JobFailed, JobRunner
    from tastebud.stores import StoreError  # lazy: CLI start-up

    with history_for(settings) as history:
        runner = JobRunner(settings, registry, history)
        try:
            return runner.run(name, start_at, end_at, as_of=as_of_at)
        except InvalidInterval as error:
            raise fail(str(error)) from None
        except JobAlreadyRunning as error:
            raise fail(str(error), EXIT_RUNNING) from None
        except JobFailed as error:
            if as_json:
                out.print_json(json.dumps(error.outcome.__dict__, default=str))
            raise fail(str(error), EXIT_FAILED) from None
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None


@app.command("history")
def history(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    status: Annotated[str | None, typer.Option(help="Only attempts with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many attempts, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Recent attempts: status, attempt number, interval, start, duration, error."""
    settings = settings_from_context(ctx)
    with history_for(settings) as runs:
        records = runs.list_runs(job_name=job, status=status, limit=limit)
    if as_json:
        out.print_json(json.dumps([record.as_dict() for record in records]))
        return
    table = Table(title="job runs")
    for column in ("job", "run", "attempt", "status", "interval", "started", "seconds", "error"):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.job_name,
            record.run_id,
            str(record.attempt),
            record.status,
            f"{record.interval_start:%Y-%m-%d %H:%M} → {record.interval_end:%Y-%m-%d %H:%M}",
            f"{record.started_at:%Y-%m-%d %H:%M:%S}",
            "" if record.duration_seconds is None else f"{record.duration_seconds:.2f}",
            record.error or "",
        )
    out.print(table)


def scheduler(
    ctx: typer.Context,
    jobs: Annotated[
        list[str] | None, typer.Option("--job", help="Only these jobs (repeatable).")
    ] = None,
    once: Annotated[bool, typer.Option(help="Run what is due now, then exit.")] = False,
) -> None:
    """Run the job schedules in this process (embedded mode; no orchestrator needed)."""
    # Imported here, not at the top: the runner brings the stores (CLI start-up).
    from tastebud.jobs import JobNotAvailable, JobRunner, UnknownJob  # lazy: CLI start-up
    from tastebud.jobs.scheduler import Scheduler  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    registry = registry_for(settings)
    for name in jobs or []:
        try:
            registry.runnable(name)
        except (UnknownJob, JobNotAvailable) as error:
            raise fail(str(error)) from None
    with history_for(settings) as runs:
        runner = JobRunner(settings, registry, runs)
        loop = Scheduler(
            runner,
            registry,
            runs,
            max_catchup_runs=settings.jobs.max_catchup_runs,
            jobs=jobs or None,
            data_version=lambda: data_version(settings),
        )
        if once:
            for outcome in loop.tick():
                reason = f": {outcome.error}" if outcome.status == "refused" else ""
                out.print(
                    f"{outcome.job_name}: {outcome.status} [{outcome.end.isoformat()}]{reason}",
                    highlight=False,
                    soft_wrap=True,
                )
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        console.print(
            f"scheduler running {', '.join(d.name for d in loop.scheduled())}; Ctrl-C stops"
        )
        loop.run_forever(stop, settings.jobs.scheduler_poll_seconds)


__all__ = ["EXIT_REFUSED", "EXIT_USAGE", "app", "clock_for", "scheduler"]
