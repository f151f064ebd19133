"""``tastebud models rollout``: a canary rollout of a model version through an experiment
(``tastebud.experiments.rollout``; docs/operations.md, "Rollouts").

``rollout VERSION`` validates the version as serving loads it (fetch, checksums, load, one
smoke recommendation) and only then starts the experiment at the first step; the
``rollout`` job steps it, rolls it back or promotes it. ``rollout status|pause|resume|abort
[VERSION]`` act on that version's rollout, or on the one still going. Exit codes: 2 for bad
input (the field named) or an unknown rollout, 1 when the rollout's state refuses the
action (one already going, one that is over), 3 when a store cannot be reached.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastebud.cli.common import EXIT_STORE, EXIT_USAGE, fail, out, settings_from_context

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.experiments.rollout import Rollout
    from tastebud.experiments.store import ExperimentStore
    from tastebud.registry import ModelRegistry
    from tastebud.stores import Stores

ACTIONS = ("status", "pause", "resume", "abort")
EXIT_REFUSED = 1


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


@contextmanager
def _opened(settings: Settings) -> Iterator[tuple[Stores, ExperimentStore, ModelRegistry]]:
    """The stores, the experiment store and the registry; refusals become a message and an
    exit code (the module docstring), never a traceback."""
    from tastebud.cli.common import stores_for  # lazy: CLI start-up
    from tastebud.experiments.errors import (  # lazy: CLI start-up
        ExperimentConflict,
        ExperimentNotFound,
        InvalidDefinition,
    )
    from tastebud.experiments.store import ExperimentStore  # lazy: CLI start-up
    from tastebud.registry import RegistryError, open_registry  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    with stores_for(settings) as stores:
        try:
            store = ExperimentStore(stores.database.sql_backend("experiments"))
            registry = open_registry(settings, stores.artifacts)
        except (StoreError, RegistryError) as error:
            raise fail(f"store: {error}", EXIT_STORE) from None
        try:
            yield stores, store, registry
        except InvalidDefinition as error:
            raise fail(str(error), EXIT_USAGE) from None
        except ExperimentNotFound as error:
            raise fail(f"no such rollout: {error}", EXIT_USAGE) from None
        except ExperimentConflict as error:
            raise fail(str(error), EXIT_REFUSED) from None
        except (StoreError, RegistryError) as error:
            raise fail(f"store: {error}", EXIT_STORE) from None
        finally:
            store.close()


def rollout_command(
    ctx: typer.Context,
    actor: Annotated[
        str,
        typer.Option(
            default_factory=_login, show_default="the login name", help="Who, for the audit."
        ),
    ],
    target: Annotated[
        str, typer.Argument(help="A version to roll out, or status, pause, resume, abort.")
    ],
    version: Annotated[
        str | None,
        typer.Argument(help="With an action: the rollout's version (default: the one going)."),
    ] = None,
    steps: Annotated[
        str, typer.Option(help="Shares of users in percent, rising to 100 (the promotion).")
    ] = "1,5,25,50,100",
    step_every: Annotated[str, typer.Option(help="Least time per step, e.g. 30m, 1h, 1d.")] = "1h",
    min_users: Annotated[
        int, typer.Option(min=1, help="Candidate users needed before a step is judged.")
    ] = 100,
    note: Annotated[str, typer.Option(help="Why: recorded in the audit trail.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Roll a model version out to a rising share of users, with automatic rollback.

    Refuses a version that fails validation on load before any traffic moves. The
    `rollout` job (every 5 minutes) steps it up once `--step-every` has passed and its
    guardrails (latency p95, empty lists, click-through) hold, rolls it back on a breach
    (alert, registry history) and promotes it to production after the last step."""
    # lazy: the rollout brings numpy, DuckDB and the registry (CLI start-up)
    from tastebud.experiments import rollout

    settings = settings_from_context(ctx)
    now = datetime.now(UTC)
    if target not in ACTIONS and version is not None:
        raise fail(f"version: give one version ({target!r} is not an action)", EXIT_USAGE)
    with _opened(settings) as (stores, store, registry):
        if target not in ACTIONS:
            plan = rollout.Plan(
                target, rollout.parse_steps(steps), rollout.parse_duration(step_every), min_users
            )
            state = rollout.start(
                store,
                registry,
                plan,
                settings=settings,
                validate=_validator(settings, stores, registry),
                actor=actor,
                now=now,
            )
        else:
            key = rollout.find(store, version)
            state = _act(target, store, registry, key, actor, note)
            if target == "status":
                state.guardrails = _guardrails(settings, stores, state, now)
    _print(state, as_json)


def _act(
    action: str, store: ExperimentStore, registry: ModelRegistry, key: str, actor: str, note: str
) -> Rollout:
    from tastebud.experiments import rollout  # lazy: CLI start-up

    if action == "pause":
        return rollout.pause(store, key, actor, note)
    if action == "resume":
        return rollout.resume(store, key, actor, note)
    if action == "abort":
        return rollout.abort(store, registry, key, actor, note)
    return rollout.load(store, key)


def _validator(settings: Settings, stores: Stores, registry: ModelRegistry) -> Any:
    """Serving's own load of a version: fetch, checksums, load, smoke test, ANN index."""
    from tastebud.ranking.lifecycle import ModelLifecycle  # lazy: numpy, implicit

    return ModelLifecycle(settings, stores, registry=registry).load_model


def _guardrails(settings: Settings, stores: Stores, state: Rollout, now: datetime) -> list[Any]:
    """The guardrails as the job would judge them now (none before any exposure)."""
    from tastebud.experiments.guardrails import evaluate_guardrails  # lazy: CLI start-up
    from tastebud.experiments.metrics import NoExposures  # lazy: CLI start-up
    from tastebud.jobs.definitions.rollout import guardrail_data  # lazy: CLI start-up

    if state.outcome:
        return []
    try:
        data = guardrail_data(settings, stores, state.experiment, now)
    except NoExposures:
        return []
    return evaluate_guardrails(state.experiment, data, settings.experiments)


def _print(state: Rollout, as_json: bool) -> None:
    described: dict[str, Any] = state.describe()
    if as_json:
        out.print_json(json.dumps(described))
        return
    steps = ",".join(f"{step:g}" for step in described["steps"])
    out.print(f"{described['key']}: {described['status']}")
    out.print(
        f"  step {described['step']} of {len(described['steps'])} ({steps}): "
        f"{described['share_percent']:g}% of users on {described['version']}"
    )
    out.print(f"  step started {described['step_started_at']}")
    if described["next_step_at"]:
        out.print(f"  next step not before {described['next_step_at']}")
    if described["reason"]:
        out.print(f"  reason: {described['reason']}")
    for result in described["guardrails"]:
        mark = "BREACHED" if result["breached"] else "ok" if result["judged"] else "not judged"
        out.print(f"  guardrail {result['metric']}: {mark} ({result['reason']})")
