"""``tastebud experiments``: define, list, show, start, pause, resume and stop experiments
(docs/experiments.md).

Definitions come from YAML (``create FILE.yaml``) and are checked whole before anything is
stored: an invalid one exits 2 naming each field. Exit codes: 1 when the experiment's state
refuses the change (starting a stopped experiment), 2 for bad input or an unknown key, 3
when the database cannot be reached. Every change is recorded in the audit trail under
``--actor`` (default: the login name).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tastebud.cli.common import EXIT_STORE, EXIT_USAGE, console, fail, out, settings_from_context

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.experiments.records import StoredExperiment
    from tastebud.experiments.store import ExperimentStore

app = typer.Typer(
    help="Online experiments: define, start, pause, resume, stop (docs/experiments.md).",
    no_args_is_help=True,
)

EXIT_REFUSED = 1
STATUS_NAMES = ("draft", "running", "paused", "stopped")
STATUS_STYLES = {"draft": "dim", "running": "green", "paused": "yellow", "stopped": "red"}
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
KeyArgument = Annotated[str, typer.Argument(help="The experiment's key.")]
NoteOption = Annotated[str, typer.Option(help="Why: recorded in the audit trail.")]


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


ActorOption = Annotated[
    str,
    typer.Option(
        default_factory=_login, show_default="the login name", help="Who, for the audit trail."
    ),
]


@contextmanager
def store_for(ctx: typer.Context) -> Iterator[ExperimentStore]:
    """The configured experiment store; its refusals become a message and an exit code,
    never a traceback (the module docstring lists the codes)."""
    from tastebud.cli.common import database_for  # lazy: CLI start-up
    from tastebud.experiments.errors import (  # lazy: CLI start-up
        ExperimentConflict,
        ExperimentNotFound,
        InvalidDefinition,
    )
    from tastebud.experiments.store import ExperimentStore  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with database_for(settings) as database:
        try:
            store = ExperimentStore(database.sql_backend("experiments"))
        except StoreError as error:
            raise fail(f"experiment store: {error}", EXIT_STORE) from None
        try:
            yield store
        except InvalidDefinition as error:
            raise _invalid(error) from None
        except ExperimentNotFound as error:
            raise fail(str(error), EXIT_USAGE) from None
        except ExperimentConflict as error:
            raise fail(str(error), EXIT_REFUSED) from None
        except StoreError as error:
            raise fail(f"experiment store: {error}", EXIT_STORE) from None
        finally:
            store.close()


def _invalid(error: Any) -> typer.Exit:
    """Every problem on its own line, its field first."""
    for field, message in error.problems[1:]:
        console.print(f"  [bold]{field or '(definition)'}[/]: {message}")
    field, message = error.problems[0]
    return fail(f"invalid definition: {field or '(definition)'}: {message}", EXIT_USAGE)


def read_yaml(path: Path) -> Any:
    """A YAML file's data (``safe_load``: no tags that build Python objects)."""
    import yaml  # lazy: CLI start-up

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"cannot read {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise fail(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise fail(f"{path} must hold one experiment (a mapping of its fields)")
    return data


def _parse(settings: Settings, data: dict[str, Any]) -> Any:
    """The definition checked whole, models against the registry when a variant names one."""
    from tastebud.experiments.definition import parse_definition  # lazy: CLI start-up
    from tastebud.experiments.errors import InvalidDefinition  # lazy: CLI start-up
    from tastebud.registry import RegistryError, open_registry  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    variants = data.get("variants")
    named = isinstance(variants, list) and any(
        isinstance(v, dict) and v.get("model") for v in variants
    )
    try:
        registry = open_registry(settings) if named else None
        return parse_definition(data, settings, registry)
    except InvalidDefinition as error:
        raise _invalid(error) from None
    except (RegistryError, StoreError, OSError) as error:
        raise fail(f"cannot check the variants' models: {error}", EXIT_STORE) from None


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The definition, in YAML.", dir_okay=False)],
    actor: ActorOption,
    note: NoteOption = "",
    as_json: JsonOption = False,
) -> None:
    """Store a definition from YAML: a new draft, or a change to an existing one (a running
    experiment keeps its variants, traffic and namespace)."""
    settings = settings_from_context(ctx)
    experiment = _parse(settings, read_yaml(file))
    with store_for(ctx) as store:
        existed = store.get(experiment.key) is not None
        stored = store.put(experiment, actor=actor, note=note)
    if as_json:
        out.print_json(json.dumps(stored.as_dict()))
        return
    verb = "updated" if existed else "created"
    out.print(f"{verb} [bold]{stored.key}[/] ({stored.status}, version {stored.version})")


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help=f"One status: {', '.join(STATUS_NAMES)}.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every experiment, by key, with its status and variants."""
    if status is not None and status not in STATUS_NAMES:
        raise fail(f"--status {status!r}: use one of {', '.join(STATUS_NAMES)}")
    with store_for(ctx) as store:
        rows = store.list(status=status)
    if as_json:
        out.print_json(json.dumps([row.as_dict() for row in rows]))
        return
    if not rows:
        out.print("no experiments yet: `tastebud experiments create FILE.yaml`")
        return
    table = Table("key", "status", "variants", "traffic", "namespace", "updated")
    for row in rows:
        table.add_row(*_summary(row))
    out.print(table)


def _summary(row: StoredExperiment) -> list[str]:
    experiment = row.experiment
    style = STATUS_STYLES[experiment.status]
    variants = ", ".join(
        f"{v.name} {v.weight:g}"
        + (" [yellow](paused)[/]" if v.name in experiment.paused_variants else "")
        for v in experiment.variants
    )
    space = experiment.namespace
    return [
        experiment.key,
        f"[{style}]{experiment.status}[/]",
        variants,
        f"{experiment.traffic:g}",
        f"{space.name} [{space.start:g}, {space.end:g})" if space else "-",
        row.updated_at.strftime("%Y-%m-%d %H:%M"),
    ]


@app.command("show")
def show(ctx: typer.Context, key: KeyArgument, as_json: JsonOption = False) -> None:
    """One experiment: its definition and its audit trail (every change: who, when, what)."""
    with store_for(ctx) as store:
        stored = store.require(key)
        audit = store.audit(key)
    if as_json:
        document = {**stored.as_dict(), "audit": [entry.as_dict() for entry in audit]}
        out.print_json(json.dumps(document))
        return
    import yaml  # lazy: CLI start-up

    out.print(f"[bold]{stored.key}[/] version {stored.version}")
    out.print(yaml.safe_dump(stored.experiment.model_dump(mode="json"), sort_keys=False))
    table = Table("at", "actor", "action", "changed", "note", title="audit trail")
    for entry in audit:
        table.add_row(
            entry.at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor,
            entry.action,
            ", ".join(entry.changed),
            entry.note,
        )
    out.print(table)


def _report(stored: StoredExperiment, what: str) -> None:
    style = STATUS_STYLES[stored.status]
    out.print(f"{what} [bold]{stored.key}[/]: now [{style}]{stored.status}[/]")


@app.command("start")
def start(ctx: typer.Context, key: KeyArgument, actor: ActorOption, note: NoteOption = "") -> None:
    """Start a draft (users are assigned within one poll, 2 s by default). A stopped
    experiment cannot start again: define a new key."""
    with store_for(ctx) as store:
        _report(store.set_status(key, "running", actor=actor, note=note), "started")


@app.command("pause")
def pause(
    ctx: typer.Context,
    key: KeyArgument,
    actor: ActorOption,
    variant: Annotated[
        str | None,
        typer.Option(help="Pause one variant (its users get control) rather than all."),
    ] = None,
    note: NoteOption = "",
) -> None:
    """Pause the experiment (no one is assigned), or one variant (its users get control,
    as a guardrail breach does) until a reviewed ``resume``."""
    with store_for(ctx) as store:
        if variant is None:
            _report(store.set_status(key, "paused", actor=actor, note=note), "paused")
        else:
            stored = store.pause_variant(key, variant, note or f"paused by {actor}", actor=actor)
            _report(stored, f"paused variant {variant} of")


@app.command("resume")
def resume(
    ctx: typer.Context,
    key: KeyArgument,
    reviewed_by: Annotated[
        str | None, typer.Option("--reviewed-by", help="Who reviewed the pause (required).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="What the review found (required).")] = None,
    variant: Annotated[
        str | None, typer.Option(help="Resume one paused variant; default: everything paused.")
    ] = None,
) -> None:
    """Resume after a person's review: a paused experiment, or a variant a guardrail
    paused. ``--reviewed-by`` and ``--note`` are required and recorded in the audit trail."""
    reviewer, finding = (reviewed_by or "").strip(), (note or "").strip()
    if not reviewer:
        raise fail("--reviewed-by is required: who reviewed the pause")
    if not finding:
        raise fail("--note is required: what the review found")
    with store_for(ctx) as store:
        stored = store.resume(key, reviewed_by=reviewer, note=finding, variant=variant)
    _report(stored, f"resumed variant {variant} of" if variant else "resumed")


@app.command("stop")
def stop(ctx: typer.Context, key: KeyArgument, actor: ActorOption, note: NoteOption = "") -> None:
    """Stop for good: no one is assigned any more and the definition is frozen."""
    with store_for(ctx) as store:
        _report(store.set_status(key, "stopped", actor=actor, note=note), "stopped")


@app.command("analyze")
def analyze(
    ctx: typer.Context,
    key: KeyArgument,
    as_json: JsonOption = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", file_okay=False, help="Write report.md, analysis.json and PNG charts here."
        ),
    ] = None,
) -> None:
    """Analyse an experiment from the stores: every metric per variant against control with
    intervals and p-values, the sample-ratio check, the guardrails and a decision line.
    Exit 2 when the key is unknown or nothing was exposed yet."""
    from tastebud.cli.common import stores_for  # lazy: CLI start-up
    from tastebud.experiments.stored import NothingToAnalyze, analyze_stored  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with stores_for(settings) as stores, store_for(ctx) as store:
        try:
            analysis = analyze_stored(settings, stores, store, key)
        except NothingToAnalyze as error:
            raise fail(str(error), EXIT_USAGE) from None
    if out_dir is not None:
        from tastebud.experiments.report import write_report  # lazy: matplotlib

        try:
            path = write_report(analysis, out_dir)
        except OSError as error:
            raise fail(f"--out {out_dir}: {error}") from None
        if not as_json:
            out.print(f"report written to {path}")
    if as_json:
        out.print_json(analysis.to_json())
        return
    _print_analysis(analysis)


def _print_analysis(analysis: Any) -> None:
    """The decision first, then trust, warnings and one row per metric and variant."""
    decision = analysis.decision
    out.print(f"[bold]{analysis.experiment}[/]: {decision.line} ({decision.reason})")
    users = ", ".join(f"{name} {count:,}" for name, count in analysis.exposed_users.items())
    trust = "ok" if analysis.trustworthy else "[red]SAMPLE RATIO MISMATCH: untrustworthy[/]"
    out.print(f"users: {users}; sample ratio p = {analysis.srm.p_value:.3g} ({trust})")
    for warning in analysis.warnings:
        out.print(f"[yellow]warning[/]: {warning}")
    table = Table("metric", "role", "variant", "control", "treatment", "lift", "p")
    for result in analysis.results:
        shown = result.decisive(result.role == "guardrail")
        if shown is None:
            table.add_row(result.metric, result.role, result.variant, "-", "-", "-", "-")
            continue
        lift = shown.relative
        interval = (
            f"{lift.estimate:+.1%} [{lift.low:+.1%}, {lift.high:+.1%}]"
            if lift.estimate is not None and lift.low is not None and lift.high is not None
            else "-"
        )
        p_value = result.adjusted_p if result.adjusted_p is not None else shown.p_value
        table.add_row(
            result.metric,
            result.role,
            result.variant,
            _number(shown.control),
            _number(shown.treatment),
            interval,
            "-" if p_value is None else f"{p_value:.3g}",
        )
    out.print(table)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
