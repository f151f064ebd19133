"""Helpers shared by the registry tests (imported by name; conftest holds the fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tastebud.registry import ModelRegistry, ModelVersion

ModelFactory = Callable[..., Path]


def manifest_for(**overrides: Any) -> dict[str, Any]:
    """What training hands the registry."""
    manifest: dict[str, Any] = {
        "model": "als",
        "user_count": 3,
        "item_count": 4,
        "embedding_dim": 2,
        "params": {"factors": 2, "regularization": 0.1},
        "metrics": {"cf.offline.ndcg@10": 0.25, "cf.offline.recall@10": 0.4},
        "snapshot": {"events": 12, "max_seq": 12},
        "time_range": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-31T00:00:00Z"},
    }
    manifest.update(overrides)
    return manifest


def register_many(registry: ModelRegistry, make_model: ModelFactory, count: int) -> list[str]:
    """Register ``count`` versions; returns their ids, oldest first."""
    versions: list[ModelVersion] = [
        registry.register(make_model(), manifest_for()) for _ in range(count)
    ]
    return [item.model_version for item in versions]
