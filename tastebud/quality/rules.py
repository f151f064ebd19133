"""Thresholds: the defaults of ``config.QUALITY_METRICS``, then ``[quality.thresholds]``,
then the rules file named by ``[quality] rules_file`` (each later one wins per metric).

A rules file is TOML::

    [thresholds."drift.item_popularity.psi"]
    warn = 0.15
    fail = 0.3

An unknown metric, an unknown key or a bad threshold refuses the whole file, naming the
file and the field: a typo must not silently leave a check at its default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from tastebud.config import (
    QUALITY_METRICS,
    QualitySettings,
    QualityThreshold,
    check_quality_thresholds,
)

Status = Literal["pass", "warn", "fail", "error"]
# A check's status is the worst of its metrics': a failure outranks a metric that could not
# be measured, so one unmeasurable metric never hides a failed one from the train gate.
SEVERITY: dict[str, int] = {"pass": 0, "warn": 1, "error": 2, "fail": 3}


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the field."""


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, QualityThreshold] = {}

    @field_validator("thresholds")
    @classmethod
    def _known(cls, value: dict[str, QualityThreshold]) -> dict[str, QualityThreshold]:
        return check_quality_thresholds(value)


def load_rules_file(path: Path) -> dict[str, QualityThreshold]:
    """The thresholds of a rules file, or a ``RulesError`` naming the file and the field."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise RulesError(f"quality rules file {path}: cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"quality rules file {path}: not TOML ({error})") from None
    try:
        return RulesFile.model_validate(document).thresholds
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(file)"
        message = first["msg"].removeprefix("Value error, ")
        raise RulesError(f"quality rules file {path}: {field}: {message}") from None


@dataclass(frozen=True)
class Rules:
    """Every metric's direction and thresholds, merged; ``judge`` gives a value's status."""

    thresholds: dict[str, tuple[str, float | None, float | None]]

    @classmethod
    def from_settings(cls, settings: QualitySettings) -> Rules:
        merged = dict(QUALITY_METRICS)
        layers = [settings.thresholds]
        if settings.rules_file is not None:
            layers.append(load_rules_file(settings.rules_file))
        for layer in layers:  # later layers win, per threshold they set
            for name, threshold in layer.items():
                direction, warn, fail = merged[name]
                fields = threshold.model_fields_set
                merged[name] = (
                    direction,
                    threshold.warn if "warn" in fields else warn,
                    threshold.fail if "fail" in fields else fail,
                )
        try:  # each layer was valid alone; together they must still be ordered
            check_quality_thresholds(
                {
                    name: QualityThreshold(warn=warn, fail=fail)
                    for name, (_, warn, fail) in merged.items()
                }
            )
        except ValueError as error:
            source = settings.rules_file or "[quality.thresholds]"
            raise RulesError(f"quality rules file {source} with the settings: {error}") from None
        return cls(merged)

    def judge(self, metric: str, value: float | None) -> Status:
        """``fail`` past the fail threshold, ``warn`` past the warn one, else ``pass``; a
        value that could not be measured (None, NaN) is an ``error``, never a pass."""
        direction, warn, fail = self.thresholds[metric]
        if value is None or math.isnan(value):
            return "error"

        def past(limit: float | None) -> bool:
            if limit is None:
                return False
            return value > limit if direction == "above" else value < limit

        if past(fail):
            return "fail"
        return "warn" if past(warn) else "pass"


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default="pass")
