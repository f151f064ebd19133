"""Experiment definitions in the configured database, with an audit trail of every change.

``experiments.db`` beside the embedded event store, or two tables on PostgreSQL's pool
(``Database.sql_backend("experiments")``). One implementation, its SQL written once
(``stores/sql.py``); the contract suite (``tests/experiments/test_store.py``) runs it on both.

What the store holds to, whoever calls it (the CLI, the API, the guardrails job):

* ``put`` creates a draft or replaces a definition. A running or paused experiment keeps
  what decides who sees what (variants with their weights, overrides and models; traffic;
  namespace; seed): changing those mid-run would mix two treatments under one name, so the
  store refuses it (``ExperimentConflict``) and says to stop it and start a new key. The
  one exception is ``set_traffic``, its own audited operation: traffic may rise (a canary's
  ramp), which only lets users in and never moves one between variants. Its
  words (description, goals, guardrails, end...) may change, and are audited. A stopped
  experiment changes no more.
* Status moves only along ``definition.TRANSITIONS``; status and paused variants change
  only through ``set_status``, ``pause_variant`` and ``resume``, never through ``put``.
* Experiments that may run (draft, running, paused) never share a namespace's range.
* Every accepted change writes one audit row (who, when, what, before and after, a note)
  in the same transaction as the change, and moves the change marker: ``version`` is one
  counter over all experiments, so ``marker()`` (its maximum) tells a poller that
  something changed in one indexed read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tastebud.experiments.definition import TRANSITIONS, Experiment, Status
from tastebud.experiments.errors import (
    ExperimentConflict,
    ExperimentNotFound,
    InvalidDefinition,
)
from tastebud.experiments.records import (
    AuditEntry,
    StoredExperiment,
    entry_from_row,
    stored_from_row,
)
from tastebud.stores.errors import Closeable
from tastebud.stores.sql import Sql, SqlBackend

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_key TEXT PRIMARY KEY,
    definition {json} NOT NULL,
    status TEXT NOT NULL,
    version {bigint} NOT NULL,
    created_at {timestamp} NOT NULL,
    updated_at {timestamp} NOT NULL
);
CREATE INDEX IF NOT EXISTS experiments_by_version ON experiments (version);
CREATE TABLE IF NOT EXISTS experiment_audit (
    id {identity},
    experiment_key TEXT NOT NULL,
    changed_at {timestamp} NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    before_definition {json},
    after_definition {json},
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS experiment_audit_by_key ON experiment_audit (experiment_key, id);
"""
COLUMNS = "experiment_key, definition, status, version, created_at, updated_at"
AUDIT_COLUMNS = (
    "id, experiment_key, changed_at, actor, action, before_definition, after_definition, note"
)
# Serializes the writers, so that versions are handed out in commit order (a poller that
# read version N never misses a change committed later with a version below N).
WRITE_LOCK = 0x7A5E_0018
# What decides who sees which treatment: fixed once an experiment has run.
ASSIGNMENT_FIELDS = ("variants", "traffic", "namespace", "seed")
# Experiments whose namespace ranges must not overlap: every one that may still run.
LIVE = ("draft", "running", "paused")


def _dump(experiment: Experiment) -> dict[str, Any]:
    return experiment.model_dump(mode="json")


class ExperimentStore(Closeable):
    """Experiment definitions and their audit trail on ``backend`` (closed with the store)."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        backend.apply_schema("experiments", backend.dialect.ddl(SCHEMA))

    # Reads ---------------------------------------------------------------------------

    def get(self, key: str) -> StoredExperiment | None:
        with self.backend.read() as sql:
            row = sql.one(f"SELECT {COLUMNS} FROM experiments WHERE experiment_key = ?", (key,))
        return None if row is None else stored_from_row(row)

    def require(self, key: str) -> StoredExperiment:
        stored = self.get(key)
        if stored is None:
            raise ExperimentNotFound(f"no experiment {key!r}")
        return stored

    def list(self, status: str | None = None) -> list[StoredExperiment]:
        """Every experiment (or those with ``status``), by key."""
        query = f"SELECT {COLUMNS} FROM experiments"
        params: list[Any] = []
        if status is not None:
            query += " WHERE status = ?"
            params.append(status)
        with self.backend.read(short=False) as sql:
            rows = sql.all(query + " ORDER BY experiment_key", params)
        return [stored_from_row(row) for row in rows]

    def audit(self, key: str) -> list[AuditEntry]:
        """Every change of ``key``, oldest first."""
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT {AUDIT_COLUMNS} FROM experiment_audit WHERE experiment_key = ? "
                "ORDER BY id",
                (key,),
            )
        return [entry_from_row(row) for row in rows]

    def marker(self) -> int:
        """Moves on every change of any experiment: what a poller compares (0 when empty)."""
        with self.backend.read() as sql:
            row = sql.one("SELECT max(version) FROM experiments")
        return int(row[0]) if row is not None and row[0] is not None else 0

    # Writes --------------------------------------------------------------------------

    def put(self, experiment: Experiment, actor: str, note: str = "") -> StoredExperiment:
        """Create a draft, or replace a definition (see the module docstring for what a
        running experiment may change). The stored status and paused variants stay; naming
        another status here is refused: ``set_status`` changes it."""
        with self.backend.write() as sql:
            self.backend.dialect.lock(sql, WRITE_LOCK)
            current = self._current(sql, experiment.key)
            status = current.status if current is not None else "draft"
            if "status" in experiment.model_fields_set and experiment.status != status:
                raise ExperimentConflict(
                    f"experiment {experiment.key!r} is {status}: change its status with "
                    "start, pause, resume or stop, not in its definition"
                )
            paused = current.experiment.paused_variants if current is not None else {}
            updated = experiment.model_copy(update={"status": status, "paused_variants": paused})
            if current is not None:
                _check_replaceable(current.experiment, updated)
            self._check_namespace(sql, updated)
            if current is not None and _dump(current.experiment) == _dump(updated):
                return current
            action = "create" if current is None else "update"
            return self._write(sql, current, updated, actor, action, note)

    def set_status(self, key: str, status: Status, actor: str, note: str = "") -> StoredExperiment:
        """Move along ``TRANSITIONS``: start (draft or paused to running), pause, stop.
        Starting records the start time when none was set; stopping, the end."""
        with self.backend.write() as sql:
            self.backend.dialect.lock(sql, WRITE_LOCK)
            current = self._required(sql, key)
            before = current.experiment
            if status not in TRANSITIONS[before.status]:
                raise ExperimentConflict(_transition_refusal(before, status))
            update: dict[str, Any] = {"status": status}
            now = datetime.now(UTC)
            if status == "running" and before.start is None:
                update["start"] = now
            if (
                status == "stopped"
                and before.end is None
                and (before.start is None or before.start < now)
            ):
                update["end"] = now
            after = before.model_copy(update=update)
            if status == "running":
                self._check_namespace(sql, after)
            action = {"running": "start", "paused": "pause", "stopped": "stop"}[status]
            if before.status == "paused" and status == "running":
                action = "resume"
            return self._write(sql, current, after, actor, action, note)

    def pause_variant(self, key: str, variant: str, reason: str, actor: str) -> StoredExperiment:
        """Send a variant's users to control (a guardrail breach, or a person's call) until a
        reviewed ``resume``. Control itself cannot be paused: pause the experiment."""
        with self.backend.write() as sql:
            self.backend.dialect.lock(sql, WRITE_LOCK)
            current = self._required(sql, key)
            before = current.experiment
            if before.variant(variant) is None:
                raise ExperimentNotFound(f"experiment {key!r} has no variant {variant!r}")
            if variant == before.control.name:
                raise ExperimentConflict(
                    f"{variant!r} is {key!r}'s control, where paused users go: pause the "
                    "experiment instead"
                )
            if before.status not in ("running", "paused"):
                raise ExperimentConflict(f"experiment {key!r} is {before.status}, not running")
            if variant in before.paused_variants:
                return current
            paused = {**before.paused_variants, variant: reason or "paused"}
            after = before.model_copy(update={"paused_variants": paused})
            return self._write(sql, current, after, actor, f"pause_variant:{variant}", reason)

    def resume(
        self, key: str, reviewed_by: str, note: str, variant: str | None = None
    ) -> StoredExperiment:
        """A person's reviewed decision to go on: ``variant`` back in (one a guardrail
        paused), or, without one, the whole experiment running again with every paused
        variant back in. ``reviewed_by`` and ``note`` are required and audited."""
        if not reviewed_by.strip():
            raise InvalidDefinition([("reviewed_by", "say who reviewed the pause")])
        if not note.strip():
            raise InvalidDefinition([("note", "say what the review found")])
        with self.backend.write() as sql:
            self.backend.dialect.lock(sql, WRITE_LOCK)
            current = self._required(sql, key)
            before = current.experiment
            if variant is not None and variant not in before.paused_variants:
                raise ExperimentConflict(f"variant {variant!r} of {key!r} is not paused")
            if variant is None and before.status != "paused" and not before.paused_variants:
                raise ExperimentConflict(
                    f"experiment {key!r} is {before.status}: nothing to resume"
                )
            if before.status == "stopped":
                raise ExperimentConflict(_transition_refusal(before, "running"))
            if variant is not None:
                paused = {k: v for k, v in before.paused_variants.items() if k != variant}
                after = before.model_copy(update={"paused_variants": paused})
                action = f"resume_variant:{variant}"
            else:
                after = before.model_copy(update={"status": "running", "paused_variants": {}})
                self._check_namespace(sql, after)
                action = "resume"
            return self._write(sql, current, after, reviewed_by, action, note)

    def set_traffic(self, key: str, traffic: float, actor: str, note: str) -> StoredExperiment:
        """Raise an experiment's traffic, running or not (not once stopped): a canary's ramp
        (``rollout``).
        The one change of assignment allowed mid-run, and only upward: GrowthBook's ranges
        grow from each variant's start (``assignment.bucket_ranges``), so every user already
        in a variant stays in it and only users outside the experiment enter. Audited as
        ``traffic`` with ``note`` (the step)."""
        if not 0 < traffic <= 1:
            raise InvalidDefinition([("traffic", "must be in (0, 1]")])
        with self.backend.write() as sql:
            self.backend.dialect.lock(sql, WRITE_LOCK)
            current = self._required(sql, key)
            before = current.experiment
            if before.status == "stopped":
                raise ExperimentConflict(_transition_refusal(before, "running"))
            if traffic < before.traffic:
                raise ExperimentConflict(
                    f"experiment {key!r} serves {before.traffic:g} of traffic: lowering it "
                    "would move users already in a variant out of it; stop it instead"
                )
            after = before.model_copy(update={"traffic": traffic})
            return self._write(sql, current, after, actor, "traffic", note)

    # Inside a write transaction --------------------------------------------------------

    def _current(self, sql: Sql, key: str) -> StoredExperiment | None:
        row = sql.one(f"SELECT {COLUMNS} FROM experiments WHERE experiment_key = ?", (key,))
        return None if row is None else stored_from_row(row)

    def _required(self, sql: Sql, key: str) -> StoredExperiment:
        current = self._current(sql, key)
        if current is None:
            raise ExperimentNotFound(f"no experiment {key!r}")
        return current

    def _check_namespace(self, sql: Sql, experiment: Experiment) -> None:
        """No other experiment that may run takes an overlapping range of the namespace."""
        namespace = experiment.namespace
        if namespace is None or experiment.status == "stopped":
            return
        marks = ",".join("?" * len(LIVE))
        rows = sql.all(
            f"SELECT {COLUMNS} FROM experiments WHERE status IN ({marks}) "
            "AND experiment_key <> ? ORDER BY experiment_key",
            [*LIVE, experiment.key],
        )
        for row in rows:
            other = stored_from_row(row).experiment
            if other.namespace is not None and namespace.overlaps(other.namespace):
                raise InvalidDefinition(
                    [
                        (
                            "namespace",
                            f"range [{namespace.start:g}, {namespace.end:g}) of namespace "
                            f"{namespace.name!r} overlaps {other.key!r} ({other.status}, "
                            f"[{other.namespace.start:g}, {other.namespace.end:g}))",
                        )
                    ]
                )

    def _write(
        self,
        sql: Sql,
        current: StoredExperiment | None,
        after: Experiment,
        actor: str,
        action: str,
        note: str,
    ) -> StoredExperiment:
        dialect = self.backend.dialect
        row = sql.one("SELECT max(version) FROM experiments")
        version = (int(row[0]) if row is not None and row[0] is not None else 0) + 1
        now = datetime.now(UTC)
        created = current.created_at if current is not None else now
        definition = dialect.json(_dump(after))
        sql.execute(
            f"INSERT INTO experiments ({COLUMNS}) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (experiment_key) DO UPDATE SET definition = excluded.definition, "
            "status = excluded.status, version = excluded.version, "
            "updated_at = excluded.updated_at",
            (
                after.key,
                definition,
                after.status,
                version,
                dialect.timestamp(created),
                dialect.timestamp(now),
            ),
        )
        before = dialect.json(_dump(current.experiment)) if current is not None else None
        sql.execute(
            "INSERT INTO experiment_audit (experiment_key, changed_at, actor, action, "
            "before_definition, after_definition, note) VALUES (?,?,?,?,?,?,?)",
            (after.key, dialect.timestamp(now), actor, action, before, definition, note),
        )
        return StoredExperiment(after, version, created, now)

    def close(self) -> None:
        self.backend.close()


def _check_replaceable(current: Experiment, updated: Experiment) -> None:
    """A stopped experiment is over; a running or paused one keeps its assignment."""
    if current.status == "stopped":
        raise ExperimentConflict(
            f"experiment {current.key!r} is stopped and changes no more: define a new key"
        )
    if current.status == "draft":
        return
    before, after = _dump(current), _dump(updated)
    changed = [name for name in ASSIGNMENT_FIELDS if before.get(name) != after.get(name)]
    if changed:
        raise ExperimentConflict(
            f"experiment {current.key!r} is {current.status}: its {', '.join(changed)} decide "
            "who sees what and cannot change mid-run (the analysis would mix two treatments); "
            "stop it and start a new key"
        )


def _transition_refusal(experiment: Experiment, status: str) -> str:
    if experiment.status == "stopped":
        return (
            f"experiment {experiment.key!r} is stopped: a stopped experiment cannot run again "
            "(its analysis is final); define a new key"
        )
    allowed = ", ".join(sorted(TRANSITIONS[experiment.status])) or "nothing"
    return f"experiment {experiment.key!r} is {experiment.status}: it can go to {allowed}"
