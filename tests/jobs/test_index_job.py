"""The ``index`` job: builds and stores the HNSW index of a large-enough production factor
model, reuses it on a rerun, and skips models exact scoring serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import job_fixtures
import numpy as np
import pytest
from interaction_data import clustered_log

from tastebud.config import Settings
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.jobs import JobRegistry, JobRunner, RetryPolicy, RunHistory
from tastebud.jobs.definitions import build_registry
from tastebud.models import ALSRecommender, PopularityRecommender, Recommender
from tastebud.ranking import retrieval
from tastebud.ranking.index_artifact import load_index
from tastebud.registry import open_registry
from tastebud.stores import Stores

# The shared fixtures (a conftest.py here would clash with the other test folders').
history, settings, stores = job_fixtures.history, job_fixtures.settings, job_fixtures.stores

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
END = NOW
START = END - timedelta(days=1)


def register_production(
    settings: Settings, stores: Stores, model: Recommender, folder: Path
) -> str:
    """Save ``model`` and make it production, as the train job would."""
    model.save(folder)
    factors = getattr(model, "item_factors_", None)
    manifest: dict[str, Any] = {
        "model": model.name,
        "user_count": len(model.users_),
        "item_count": len(model.items_),
        "embedding_dim": None if factors is None else int(factors.shape[1]),
        "params": {},
    }
    registry = open_registry(settings, stores.artifacts)
    return registry.register(folder, manifest, aliases=["production"]).model_version


@pytest.fixture
def runner(settings: Settings, history: RunHistory, stores: Stores) -> JobRunner:
    registry: JobRegistry = build_registry(RetryPolicy(max_attempts=1, base_seconds=0.001))
    return JobRunner(settings, registry, history, stores=stores, clock=lambda: NOW)


@pytest.fixture
def matrix() -> Any:
    return build_matrix(clustered_log(), MatrixOptions())


def test_index_is_registered_with_its_planned_schedule() -> None:
    definition = build_registry().runnable("index")
    assert definition.timeout_seconds == 1800 and definition.reason is None
    assert "30 4 * * *" in str(definition.schedule)


def test_builds_a_loadable_index_for_a_factor_model(
    runner: JobRunner,
    settings: Settings,
    stores: Stores,
    matrix: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ALSRecommender(factors=8, iterations=5, use_gpu=False).fit(matrix)
    version = register_production(settings, stores, model, tmp_path / "als")
    small = settings.ranking.with_overrides({"candidates": {"exact_threshold": 10}})
    monkeypatch.setattr(settings, "ranking", small)

    outcome = runner.run("index", START, END)
    assert outcome.status == "succeeded", outcome
    output = outcome.output
    assert output["model_version"] == version and output["reused"] is False
    assert output["index"] == f"indexes/{version}/manifest.json"
    assert output["items"] == model.n_items and output["dim"] == 8
    assert output["sample_recall@100"] >= 0.95

    index = load_index(stores.artifacts, version, item_count=model.n_items, dim=8)
    assert index is not None and index.kind == "hnsw"
    users = model.user_factors_[:5]
    exact, _ = retrieval.ExactRetriever(model.item_factors_).search(users, 5)
    found, _ = index.search(users, 5)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(exact, found, strict=True)]) >= 0.9

    again = runner.run("index", START - timedelta(days=1), START)
    assert again.status == "succeeded" and again.output["reused"] is True


def test_skips_when_exact_scoring_serves(
    runner: JobRunner, settings: Settings, stores: Stores, matrix: Any, tmp_path: Path
) -> None:
    model = ALSRecommender(factors=8, iterations=5, use_gpu=False).fit(matrix)
    version = register_production(settings, stores, model, tmp_path / "als")
    outcome = runner.run("index", START, END)  # 60 items, threshold 200,000
    assert outcome.status == "succeeded"
    assert outcome.output["skipped"] == "exact scoring serves this model"
    assert load_index(stores.artifacts, version) is None


def test_skips_a_model_without_factors(
    runner: JobRunner,
    settings: Settings,
    stores: Stores,
    matrix: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = PopularityRecommender(half_life_days=None).fit(matrix)
    version = register_production(settings, stores, model, tmp_path / "popularity")
    small = settings.ranking.with_overrides({"candidates": {"exact_threshold": 10}})
    monkeypatch.setattr(settings, "ranking", small)
    outcome = runner.run("index", START, END)
    assert outcome.status == "succeeded"
    assert outcome.output["skipped"] == "exact scoring serves this model"
    assert outcome.output["model"] == "popularity"
    assert load_index(stores.artifacts, version) is None


def test_skips_without_a_production_model(runner: JobRunner) -> None:
    outcome = runner.run("index", START, END)
    assert outcome.status == "succeeded"
    assert outcome.output == {"skipped": "no production model yet"}
