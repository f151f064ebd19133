"""Canary rollouts: a new model version earns its traffic step by step through an experiment,
and goes back the moment a guardrail says it harms users (issue 19, part 5).

A rollout of version V is the experiment ``rollout-V``: ``control`` (what serving ranks with,
production) and ``candidate`` (``model: V``), with guardrails on serving latency (p95), empty
lists and click-through. A step's share of users reaches the candidate through the
experiment's ``traffic``. The variants' weights are ``[1 - m, m]`` with ``m`` the largest
share short of the last step (at least one half), and traffic ``share / m``: the candidate's
range of the hash is ``[1 - m, 1 - m + share)``, so raising traffic (``store.set_traffic``)
only adds users to the candidate, never moves one out, and control holds about as many
users to compare with.

What happens, all of it in the experiment's audit trail (the plan in the creation's note,
each step in a ``traffic`` entry's note, as JSON) and in the registry's alias history:

* ``start``: refused before any traffic moves when the version fails validation on load
  (``validate``, serving's own fetch, checksum, load and smoke test); else the experiment
  is created at the first step, started, and V promoted to the ``canary`` alias.
* ``tick`` (the ``rollout`` job, every few minutes): a breached guardrail, or a candidate
  the ``guardrails`` job paused, rolls back at once: the experiment stops (every user back
  on production), ``canary`` is retired with the reason in its history, and ``alert`` is
  called. Otherwise, once ``step_every`` has passed since the step began and the candidate
  has ``min_users`` users, the next step; reaching the last promotes V to ``production``
  and stops the experiment.
* ``pause`` holds the rollout with the candidate's users on production (the experiment
  paused); ``resume`` goes on at the same step; ``abort`` ends it as a rollback does,
  without an alert.

Error rate is not among the guardrails: a failed request logs no exposure, so the
exposures cannot count it (the serving error counters in Prometheus can).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tastebud.config import Settings
from tastebud.experiments.definition import Experiment, Guardrail, Variant, check_definition
from tastebud.experiments.errors import ExperimentConflict, InvalidDefinition
from tastebud.experiments.guardrails import GuardrailResult, evaluate_guardrails
from tastebud.experiments.metrics import NoExposures
from tastebud.experiments.records import AuditEntry, StoredExperiment
from tastebud.experiments.samples import ExperimentData
from tastebud.experiments.store import ExperimentStore
from tastebud.registry.errors import RegistryError
from tastebud.registry.registry import ModelRegistry

PREFIX = "rollout-"
CONTROL, CANDIDATE = "control", "candidate"
DEFAULT_STEPS = (1.0, 5.0, 25.0, 50.0, 100.0)
DEFAULT_EVERY = timedelta(hours=1)
GUARDRAIL_METRICS = ("latency_p95", "empty_lists", "click_through")
# A tenth of lists empty is a broken candidate, whatever control does (serving falls back to
# popularity, so a healthy model serves almost none); the test covers what is subtler.
EMPTY_LISTS_LIMIT = 0.1
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
DataLoader = Callable[[Experiment, datetime], ExperimentData]
Alert = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Plan:
    """What a rollout was asked to do: the version, the shares in percent (the last is 100,
    the promotion), how long each step lasts at least, and the users the candidate needs
    before a step counts as judged."""

    version: str
    steps: tuple[float, ...] = DEFAULT_STEPS
    step_every: timedelta = DEFAULT_EVERY
    min_users: int = 100

    @property
    def key(self) -> str:
        return PREFIX + self.version

    @property
    def widest(self) -> float:
        """``m``: the candidate's weight (the module docstring)."""
        return max([0.5, *(step / 100 for step in self.steps[:-1])])

    def traffic(self, step: int) -> float:
        return min(1.0, self.steps[step] / 100 / self.widest)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "steps": list(self.steps),
            "step_every_seconds": self.step_every.total_seconds(),
            "min_users": self.min_users,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            data["version"],
            tuple(float(step) for step in data["steps"]),
            timedelta(seconds=float(data["step_every_seconds"])),
            int(data["min_users"]),
        )


def parse_steps(text: str) -> tuple[float, ...]:
    """``1,5,25,50,100``: increasing percentages ending at 100 (InvalidDefinition naming
    ``steps`` otherwise)."""
    try:
        steps = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidDefinition([("steps", f"{text!r} is not a list of percentages")]) from None
    if len(steps) < 2 or steps[-1] != 100:
        raise InvalidDefinition([("steps", "give at least two steps; the last must be 100")])
    if any(not 0 < step <= 100 for step in steps):
        raise InvalidDefinition([("steps", "each step is a percentage in (0, 100]")])
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise InvalidDefinition([("steps", "steps must increase")])
    return steps


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d`` (a bare number is seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise InvalidDefinition([("step_every", f"{text!r}: use a duration like 30m or 1h")])
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2) or "s"])


def build_experiment(plan: Plan, actor: str) -> Experiment:
    """The experiment of ``plan`` at its first step (a draft)."""
    widest = plan.widest
    guard = {"min_users": plan.min_users}
    return Experiment(
        key=plan.key,
        description=f"Canary rollout of model {plan.version} "
        f"(steps {','.join(f'{step:g}' for step in plan.steps)} %).",
        owner=actor,
        variants=[
            Variant(name=CONTROL, weight=1 - widest, description="production"),
            Variant(name=CANDIDATE, weight=widest, model=plan.version),
        ],
        traffic=plan.traffic(0),
        goals=["click_through"],
        guardrails=[
            Guardrail(metric="latency_p95", max_relative_change=0.25, sequential=False, **guard),
            Guardrail(metric="empty_lists", threshold=EMPTY_LISTS_LIMIT, **guard),
            Guardrail(metric="click_through", **guard),
        ],
    )


@dataclass
class Rollout:
    """A rollout as its audit trail tells it."""

    stored: StoredExperiment
    plan: Plan
    step: int
    step_at: datetime
    outcome: str | None = None  # promoted, rolled_back, aborted (None: still going)
    reason: str = ""
    guardrails: list[GuardrailResult] = field(default_factory=list)

    @property
    def experiment(self) -> Experiment:
        return self.stored.experiment

    @property
    def share(self) -> float:
        return self.plan.steps[self.step]

    @property
    def next_step_at(self) -> datetime | None:
        return None if self.outcome else self.step_at + self.plan.step_every

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.plan.key,
            "version": self.plan.version,
            "status": self.outcome or self.experiment.status,
            "step": self.step + 1,
            "steps": list(self.plan.steps),
            "share_percent": self.share,
            "step_started_at": self.step_at.isoformat(),
            "next_step_at": self.next_step_at.isoformat() if self.next_step_at else None,
            "reason": self.reason,
            "guardrails": [result.model_dump(mode="json") for result in self.guardrails],
        }


def _note(**fields: Any) -> str:
    return json.dumps(fields, sort_keys=True, default=str)


def _parsed(entry: AuditEntry) -> dict[str, Any]:
    try:
        data = json.loads(entry.note)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def load(store: ExperimentStore, key: str) -> Rollout:
    """The rollout ``key`` (``rollout-VERSION``) from its experiment and audit trail."""
    stored = store.require(key)
    plan: Plan | None = None
    step, step_at, outcome, reason = 0, stored.created_at, None, ""
    for entry in store.audit(key):
        note = _parsed(entry)
        if "rollout" in note:
            plan = Plan.from_json(note["rollout"])
        if "step" in note:
            step, step_at = int(note["step"]), datetime.fromisoformat(note["at"])
        if "outcome" in note:
            outcome, reason = note["outcome"], note.get("reason", "")
    if plan is None:
        raise ExperimentConflict(f"experiment {key!r} is not a rollout")
    return Rollout(stored, plan, step, step_at, outcome, reason)


def find(store: ExperimentStore, version: str | None = None) -> str:
    """The key of ``version``'s rollout, or (no version) of the one still going, else the
    latest. ExperimentNotFound-like refusal when there is none."""
    if version:
        return PREFIX + version
    rollouts = [s for s in store.list() if s.experiment.key.startswith(PREFIX)]
    going = [s for s in rollouts if s.experiment.status != "stopped"]
    chosen = going or sorted(rollouts, key=lambda s: s.updated_at)
    if not chosen:
        raise InvalidDefinition([("version", "no rollout yet: give a version to roll out")])
    return chosen[-1].experiment.key


def start(
    store: ExperimentStore,
    registry: ModelRegistry,
    plan: Plan,
    *,
    settings: Settings,
    validate: Callable[[str], object],
    actor: str,
    now: datetime,
) -> Rollout:
    """Create and start ``plan``'s experiment at its first step, once the version passed
    ``validate`` (raises on failure): a version that would not serve moves no traffic."""
    try:
        version = registry.resolve(plan.version)
    except RegistryError as error:
        raise InvalidDefinition([("version", str(error))]) from None
    if version != plan.version:
        raise InvalidDefinition([("version", f"give the version id ({version}), not an alias")])
    if registry.aliases().get("production") == version:
        raise InvalidDefinition([("version", f"{version} is production already")])
    going = [s.experiment.key for s in store.list() if s.experiment.key.startswith(PREFIX)]
    going = [key for key in going if store.require(key).experiment.status != "stopped"]
    if going:
        raise ExperimentConflict(f"rollout {going[0]!r} is still going: one rollout at a time")
    try:
        validate(version)
    except Exception as error:  # ModelLoadError, or whatever the loader raised
        raise InvalidDefinition(
            [("version", f"{version} fails validation on load, no traffic moved: {error}")]
        ) from None
    experiment = build_experiment(plan, actor)
    try:
        check_definition(experiment, settings, registry)
    except ValueError as error:  # pydantic: a guardrail metric this deployment removed
        raise InvalidDefinition([("guardrails", str(error).splitlines()[-1])]) from None
    at = now.isoformat()
    store.put(experiment, actor, _note(rollout=plan.to_json(), step=0, at=at))
    store.set_status(plan.key, "running", actor, f"rollout step 1: {plan.steps[0]:g}% of users")
    registry.promote(version, "canary", reason=f"{plan.key} started")
    return load(store, plan.key)


def tick(
    store: ExperimentStore,
    registry: ModelRegistry,
    key: str,
    *,
    settings: Settings,
    data: DataLoader,
    alert: Alert,
    now: datetime,
    actor: str = "rollout",
) -> tuple[Rollout, str]:
    """One look at a running rollout: roll back, hold, step or promote (the module
    docstring). Returns the rollout as it stands after and what was done."""
    rollout = load(store, key)
    experiment = rollout.experiment
    if rollout.outcome or experiment.status != "running":
        return rollout, "none"
    paused = experiment.paused_variants.get(CANDIDATE)
    if paused is not None:
        return _end(store, registry, rollout, "rolled_back", f"paused: {paused}", actor, alert)
    users = 0
    try:
        found = data(experiment, now)
        rollout.guardrails = evaluate_guardrails(experiment, found, settings.experiments)
        users = found.exposed_users.get(CANDIDATE, 0)
    except NoExposures:
        rollout.guardrails = []
    breached = [result for result in rollout.guardrails if result.breached]
    if breached:
        reason = "; ".join(f"{result.metric}: {result.reason}" for result in breached)
        return _end(store, registry, rollout, "rolled_back", reason, actor, alert)
    if now < rollout.step_at + rollout.plan.step_every:
        return rollout, "hold"
    if users < rollout.plan.min_users:
        return rollout, "hold"
    step = rollout.step + 1
    if step == len(rollout.plan.steps) - 1:
        registry.promote(rollout.plan.version, "production", reason=f"{key} finished")
        return _end(store, registry, rollout, "promoted", "every step held", actor, None)
    message = f"rollout step {step + 1}: {rollout.plan.steps[step]:g}% of users"
    note = _note(step=step, at=now.isoformat(), message=message)
    store.set_traffic(key, rollout.plan.traffic(step), actor, note)
    stepped = load(store, key)
    stepped.guardrails = rollout.guardrails
    return stepped, "step"


def _end(
    store: ExperimentStore,
    registry: ModelRegistry,
    rollout: Rollout,
    outcome: str,
    reason: str,
    actor: str,
    alert: Alert | None,
) -> tuple[Rollout, str]:
    """Stop the experiment (every user on production), retire ``canary`` with the reason
    and, for a rollback, alert."""
    key, version = rollout.plan.key, rollout.plan.version
    if rollout.experiment.status != "stopped":
        store.set_status(key, "stopped", actor, _note(outcome=outcome, reason=reason))
    if registry.aliases().get("canary") == version:
        registry.retire("canary", f"{key} {outcome.replace('_', ' ')}: {reason}")
    if alert is not None:
        alert(
            {
                "alert": "rollout_rolled_back",
                "experiment": key,
                "model_version": version,
                "step": rollout.step + 1,
                "share_percent": rollout.share,
                "reason": reason,
            }
        )
    ended = load(store, key)
    ended.guardrails = rollout.guardrails
    return ended, outcome


def pause(store: ExperimentStore, key: str, actor: str, note: str) -> Rollout:
    """Hold the rollout; the candidate's users are served production meanwhile."""
    load(store, key)  # refuses what is not a rollout
    store.set_status(key, "paused", actor, note or "rollout paused")
    return load(store, key)


def resume(store: ExperimentStore, key: str, actor: str, note: str) -> Rollout:
    load(store, key)
    store.resume(key, reviewed_by=actor, note=note or "rollout resumed")
    return load(store, key)


def abort(
    store: ExperimentStore, registry: ModelRegistry, key: str, actor: str, reason: str
) -> Rollout:
    """End the rollout as a rollback does (audited, canary retired), without an alert."""
    rollout = load(store, key)
    if rollout.outcome:
        raise ExperimentConflict(f"rollout {key!r} is over ({rollout.outcome})")
    why = reason or f"aborted by {actor}"
    return _end(store, registry, rollout, "aborted", why, actor, None)[0]
