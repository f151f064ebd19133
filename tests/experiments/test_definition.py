"""Invalid definitions are refused naming the field (issue 18, "Bad input"); the model check
runs against a real registry on a local artifact folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments.factories import definition
from tastebud.config import Settings
from tastebud.experiments.definition import parse_definition
from tastebud.experiments.errors import InvalidDefinition
from tastebud.registry import ModelRegistry
from tastebud.stores import ArtifactStore


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """A registry with one version, promoted to production; canary points nowhere."""
    registry = ModelRegistry(ArtifactStore(str(tmp_path / "artifacts")), cache_dir=tmp_path / "c")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "factors.bin").write_bytes(b"\x00" * 64)
    manifest = {
        "model": "als",
        "user_count": 3,
        "item_count": 4,
        "embedding_dim": 2,
        "params": {},
        "metrics": {},
        "snapshot": {"events": 12},
        "time_range": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-31T00:00:00Z"},
    }
    registry.register(folder, manifest, aliases=["production"])
    return registry


def refusal(data: dict[str, Any], registry: ModelRegistry | None = None) -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as refused:
        parse_definition(data, Settings(), registry)
    return refused.value


def variants(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": f"v{index}", "weight": 0.5, **spec} for index, spec in enumerate(specs)]


def test_a_valid_definition_parses(registry: ModelRegistry) -> None:
    version = registry.aliases()["production"]
    data = definition(variants=variants({"model": "production"}, {"model": version}))
    experiment = parse_definition(data, Settings(), registry)
    assert [variant.model for variant in experiment.variants] == ["production", version]


def test_weights_not_summing_to_one() -> None:
    error = refusal(definition(variants=variants({}, {"weight": 0.4})))
    assert error.field == "variants" and "sum to 1; they sum to 0.9" in str(error)


def test_unknown_override_field() -> None:
    error = refusal(definition(variants=variants({}, {"ranking": {"mmr": {"diversty": 0.5}}})))
    assert error.field == "variants.1.ranking.mmr.diversty"


def test_an_override_out_of_range_names_its_path() -> None:
    error = refusal(definition(variants=variants({}, {"ranking": {"mmr": {"diversity": 7}}})))
    assert error.field.startswith("variants.1.ranking") and "diversity" in str(error)


def test_unknown_metric() -> None:
    error = refusal(definition(goals=["click_through", "revenue"]))
    assert error.field == "goals.1" and "unknown metric 'revenue'" in str(error)
    error = refusal(definition(guardrails=[{"metric": "latency_p99", "threshold": 1}]))
    assert error.field == "guardrails.0.metric"


def test_overlapping_namespace_range_is_refused_by_the_store_too() -> None:
    error = refusal(definition(namespace={"name": "home", "start": 0.6, "end": 0.4}))
    assert error.field == "namespace" and "below its end" in str(error)


def test_an_alias_pointing_nowhere(registry: ModelRegistry) -> None:
    error = refusal(definition(variants=variants({}, {"model": "canary"})), registry)
    assert error.field == "variants.1.model"
    assert "alias canary points to no version yet" in str(error)


def test_an_unknown_version_or_name(registry: ModelRegistry) -> None:
    error = refusal(
        definition(variants=variants({"model": "20261122T013000Z-3f9a1c"}, {})), registry
    )
    assert error.field == "variants.0.model" and "no model version" in str(error)
    error = refusal(definition(variants=variants({}, {"model": "staging"})), registry)
    assert error.field == "variants.1.model" and "neither a model version" in str(error)


def test_every_problem_is_named_at_once() -> None:
    data = definition(goals=["nope"], guardrails=[{"metric": "gone", "threshold": 1}])
    fields = [field for field, _ in refusal(data).problems]
    assert fields == ["goals.0", "guardrails.0.metric"]


def test_times_without_a_zone_are_utc() -> None:
    experiment = parse_definition(definition(start="2026-12-01T10:00:00"), Settings())
    assert experiment.start is not None and experiment.start.utcoffset() is not None
    error = refusal(definition(start="2026-12-02T00:00:00Z", end="2026-12-01T00:00:00Z"))
    assert error.field == "end"
