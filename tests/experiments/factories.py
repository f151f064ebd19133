"""A small valid definition to vary (imported by name by the experiment and API tests)."""

from __future__ import annotations

from typing import Any

from tastebud.experiments.definition import Experiment


def definition(key: str = "blend", **changes: Any) -> dict[str, Any]:
    """A valid two-variant definition as YAML would give it, with ``changes`` on top."""
    data: dict[str, Any] = {
        "key": key,
        "description": "more diversity",
        "owner": "ranking team",
        "variants": [
            {"name": "control", "weight": 0.5},
            {"name": "diverse", "weight": 0.5, "ranking": {"mmr": {"diversity": 0.5}}},
        ],
        "goals": ["click_through"],
        "guardrails": [{"metric": "skip_rate", "max_relative_change": 0.1}],
    }
    data.update(changes)
    return data


def experiment(key: str = "blend", **changes: Any) -> Experiment:
    return Experiment.model_validate(definition(key, **changes))
