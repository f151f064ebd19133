"""What an experiment is: its variants, who may enter it, what it is judged on and where it
stands. Read from YAML or JSON and refused, naming the field, when it cannot run as written.

Checks that need only the definition live on the models (weights summing to 1, unique
variant names, ranges inside [0, 1]); ``check_definition`` adds those that need the
settings (metric names, ranking overrides against the configured ``[ranking]``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tastebud.config import Settings
from tastebud.experiments.errors import InvalidDefinition
from tastebud.ranking_config import RankingSettings
from tastebud.registry.errors import RegistryError

if TYPE_CHECKING:
    from tastebud.registry import ModelRegistry

Status = Literal["draft", "running", "paused", "stopped"]

# Where a status may go next. A stopped experiment is over: a new one needs a new key.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"running", "stopped"}),
    "running": frozenset({"paused", "stopped"}),
    "paused": frozenset({"running", "stopped"}),
    "stopped": frozenset(),
}

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Text = Annotated[str, StringConstraints(max_length=2_000)]
WEIGHT_TOLERANCE = 1e-6


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Variant(_Model):
    """One arm. The first variant of an experiment is its control."""

    name: Name
    weight: float = Field(gt=0, le=1, description="Share of the experiment's traffic.")
    description: Text = ""
    ranking: dict[str, Any] = Field(
        default_factory=dict,
        description='Overrides of the [ranking] settings, e.g. {"mmr": {"diversity": 0.5}}.',
    )
    model: Name | None = Field(
        default=None, description="A registry alias or version to rank with (default: serving's)."
    )

    @field_validator("ranking")
    @classmethod
    def _known_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        RankingSettings().with_overrides(value)  # unknown names and bad values, by field
        return value


class Namespace(_Model):
    """A layer: experiments in one namespace take disjoint ranges of the same hash, so they
    never share a user (GrowthBook's namespaces)."""

    name: Name
    start: float = Field(ge=0, le=1)
    end: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Namespace:
        if not self.start < self.end:
            raise ValueError("namespace start must be below its end")
        return self

    def overlaps(self, other: Namespace) -> bool:
        return self.name == other.name and self.start < other.end and other.start < self.end


class Guardrail(_Model):
    """A metric a variant must not harm. It breaches when the variant's value passes
    ``threshold`` (above it for a lower-is-better metric, below for higher-is-better), when
    it is worse than control by more than ``max_relative_change``, or, with ``sequential``,
    when an always-valid test says it is worse at all."""

    metric: Name
    threshold: float | None = None
    max_relative_change: float | None = Field(default=None, gt=0)
    sequential: bool = True
    min_users: int = Field(default=100, ge=1, description="Judged from this many per variant.")


class Experiment(_Model):
    key: Name
    description: Text = ""
    hypothesis: Text = ""
    owner: Text = ""
    variants: list[Variant] = Field(min_length=2, max_length=20)
    traffic: float = Field(default=1.0, gt=0, le=1, description="Share of users who enter.")
    namespace: Namespace | None = None
    seed: Name | None = Field(default=None, description="The hash seed (default: the key).")
    goals: list[Name] = Field(min_length=1, description="Metrics the decision rests on.")
    guardrails: list[Guardrail] = Field(default_factory=list)
    min_sample_size: int | None = Field(default=None, ge=1, description="Users per variant.")
    minimum_effect: float | None = Field(
        default=None,
        gt=0,
        description="The relative lift worth detecting; with it the power calculation gives "
        "the sample size (power 0.8 at alpha).",
    )
    sequential: bool = Field(
        default=False, description="Goals get always-valid intervals (peeking is allowed)."
    )
    status: Status = "draft"
    start: datetime | None = None
    end: datetime | None = None
    paused_variants: dict[str, str] = Field(
        default_factory=dict,
        description="Variants a guardrail paused, with why: their users get control.",
    )

    # Field validators (not one model validator) so that each refusal names its field.
    @field_validator("variants")
    @classmethod
    def _variants_consistent(cls, variants: list[Variant]) -> list[Variant]:
        names = [variant.name for variant in variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        total = math.fsum(variant.weight for variant in variants)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"variant weights must sum to 1; they sum to {total:g}")
        return variants

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, moment: datetime | None) -> datetime | None:
        """A time without a zone is UTC (not the machine's zone, as ``timestamp()`` reads it)."""
        if moment is not None and moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if start and end and not start < end:
            raise ValueError("start must be before end")
        return end

    @field_validator("paused_variants")
    @classmethod
    def _known_paused(cls, paused: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        names = [variant.name for variant in info.data.get("variants") or []]
        unknown = [name for name in paused if names and name not in names]
        if unknown:
            raise ValueError(f"paused variant {unknown[0]!r} is not a variant")
        return paused

    @property
    def control(self) -> Variant:
        return self.variants[0]

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key

    def variant(self, name: str) -> Variant | None:
        return next((variant for variant in self.variants if variant.name == name), None)


def check_definition(
    experiment: Experiment, settings: Settings, registry: ModelRegistry | None = None
) -> None:
    """What the settings and the registry decide: metric names, the ranking overrides
    against the configured ``[ranking]``, and (given a ``registry``) that each variant's
    model alias or version resolves. Raises pydantic's ValidationError naming the field."""
    errors: list[InitErrorDetails] = []
    metrics = settings.experiments.metrics
    for index, name in enumerate(experiment.goals):
        if name not in metrics:
            errors.append(_unknown_metric(("goals", index), name, metrics))
    for index, guardrail in enumerate(experiment.guardrails):
        if guardrail.metric not in metrics:
            errors.append(
                _unknown_metric(("guardrails", index, "metric"), guardrail.metric, metrics)
            )
    for index, variant in enumerate(experiment.variants):
        try:
            settings.ranking.with_overrides(variant.ranking)
        except ValidationError as error:
            for detail in error.errors():
                errors.append(
                    {
                        "type": PydanticCustomError("invalid_override", detail["msg"]),
                        "loc": ("variants", index, "ranking", *detail["loc"]),
                        "input": detail.get("input"),
                    }
                )
    if registry is not None:
        errors.extend(_unresolved_models(experiment, registry))
    if errors:
        raise ValidationError.from_exception_data(Experiment.__name__, errors)


def _unresolved_models(experiment: Experiment, registry: ModelRegistry) -> list[InitErrorDetails]:
    """A variant's model that names no version: an alias that points nowhere (or at a
    version since deleted), an unknown version, or neither an alias nor a version. An
    unreachable artifact store is not the definition's fault: it raises as it is."""
    errors: list[InitErrorDetails] = []
    for index, variant in enumerate(experiment.variants):
        if variant.model is None:
            continue
        try:
            registry.resolve(variant.model)
        except RegistryError as error:
            errors.append(
                {
                    "type": PydanticCustomError(
                        "unknown_model", "{reason}", {"reason": str(error)}
                    ),
                    "loc": ("variants", index, "model"),
                    "input": variant.model,
                }
            )
    return errors


def parse_definition(
    data: Any, settings: Settings, registry: ModelRegistry | None = None
) -> Experiment:
    """An experiment from YAML's or JSON's data, checked whole (``check_definition``);
    ``InvalidDefinition`` naming each field otherwise. What the CLI and the API both call
    before anything is stored."""
    try:
        experiment = Experiment.model_validate(data)
        check_definition(experiment, settings, registry)
    except ValidationError as error:
        raise InvalidDefinition.from_validation(error) from None
    return experiment


def _unknown_metric(
    loc: tuple[str | int, ...], name: str, known: Iterable[str]
) -> InitErrorDetails:
    # pydantic fills ``{name}`` in a message template, without conversions such as ``!r``.
    return {
        "type": PydanticCustomError(
            "unknown_metric",
            "unknown metric '{name}' (defined: {known})",
            {"name": name, "known": ", ".join(sorted(known))},
        ),
        "loc": loc,
        "input": name,
    }
