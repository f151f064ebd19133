"""What the experiment store gives back: a stored definition with its bookkeeping, and one
change of the audit trail (``experiments.store``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tastebud.experiments.definition import Experiment, Status
from tastebud.stores.check_history import read_moment
from tastebud.stores.sql import loads


@dataclass(frozen=True)
class StoredExperiment:
    """A definition as stored: the experiment (its status inside) and its bookkeeping."""

    experiment: Experiment
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        return self.experiment.key

    @property
    def status(self) -> Status:
        return self.experiment.status

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.experiment.model_dump(mode="json"),
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class AuditEntry:
    """One change: who made it, when, what (``action``), the definition before and after
    (None before a creation), and the note given (a pause's reason, a review's note)."""

    id: int
    key: str
    at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str

    @property
    def changed(self) -> list[str]:
        """The top-level fields the change touched, in definition order."""
        before, after = self.before or {}, self.after or {}
        names = dict.fromkeys([*Experiment.model_fields, *before, *after])  # JSONB reorders
        return [name for name in names if before.get(name) != after.get(name)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "changed": self.changed,
            "before": self.before,
            "after": self.after,
            "note": self.note,
        }


def stored_from_row(row: Sequence[Any]) -> StoredExperiment:
    _, definition, _, version, created_at, updated_at = row
    return StoredExperiment(
        Experiment.model_validate(loads(definition)),
        int(version),
        read_moment(created_at),
        read_moment(updated_at),
    )


def entry_from_row(row: Sequence[Any]) -> AuditEntry:
    id_, key, at, actor, action, before, after, note = row
    return AuditEntry(
        int(id_), key, read_moment(at), actor, action, loads(before), loads(after), note
    )
