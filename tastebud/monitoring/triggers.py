"""The retraining triggers: ``[monitoring.triggers]`` in the settings, then the ``[triggers]``
table of the rules file named by ``[monitoring] rules_file`` (it wins per rule it sets)::

    [triggers]
    ndcg_drop = 0.15     # offline NDCG@10 down more than 15% from training time
    max_age_hours = 72
    new_items = false    # this rule off

An unknown rule, an unknown key or a bad threshold refuses the whole file, naming the file
and the field, as the quality rules files are (``quality.rules``): a typo must not silently
leave a trigger at its default. ``false`` turns a rule off (TOML has no null).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from tastebud.config import MonitoringSettings, RetrainingTriggers
from tastebud.quality.rules import RulesError

# The check that measures each rule, and the metric it judges.
TRIGGERS: dict[str, tuple[str, str]] = {
    "ndcg_drop": ("offline", "offline.ndcg@10.significant_drop"),
    "score_psi": ("scores", "scores.psi"),
    "data_psi": ("data_drift", "data_drift.psi"),
    "new_events": ("new_data", "new_data.events"),
    "new_items": ("new_data", "new_data.items"),
    "max_age_hours": ("age", "model.age_hours"),
}


class TriggersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    triggers: dict[str, Any] = {}

    @field_validator("triggers")
    @classmethod
    def _known(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = [name for name in value if name not in TRIGGERS]
        if unknown:
            raise ValueError(f"unknown trigger {unknown[0]!r}: use one of {', '.join(TRIGGERS)}")
        return {name: None if setting is False else setting for name, setting in value.items()}


def _refused(path: Path, error: ValidationError) -> RulesError:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(file)"
    message = first["msg"].removeprefix("Value error, ")
    return RulesError(f"retraining rules file {path}: {field}: {message}")


def load_triggers_file(path: Path) -> dict[str, Any]:
    """The rules a file sets, checked, or a ``RulesError`` naming the file and the field."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise RulesError(
            f"retraining rules file {path}: cannot be read ({error.strerror})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"retraining rules file {path}: not TOML ({error})") from None
    try:
        rules = TriggersFile.model_validate(document).triggers
    except ValidationError as error:
        raise _refused(path, error) from None
    try:
        RetrainingTriggers.model_validate(rules)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(["triggers", *(str(part) for part in first["loc"])])
        raise RulesError(f"retraining rules file {path}: {field}: {first['msg']}") from None
    return rules


def triggers_from(settings: MonitoringSettings) -> RetrainingTriggers:
    """The settings' triggers with the rules file's over them (it is read on every call,
    so an edit applies at the next run)."""
    if settings.rules_file is None:
        return settings.triggers
    merged = {**settings.triggers.model_dump(), **load_triggers_file(settings.rules_file)}
    return RetrainingTriggers.model_validate(merged)
