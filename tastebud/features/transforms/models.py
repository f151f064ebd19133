"""Sources from trained artifacts: CF factors of the registry's ``production`` model, and
item content embeddings of the embedding registry's ``production`` version (read through
``tastebud.content``, never re-implemented). Both return None when there is nothing yet, so
a fresh install materializes the other views without an error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from tastebud.content.artifact import latest_artifact
from tastebud.content.catalog_embedding import registry_for
from tastebud.features.compute import TransformContext
from tastebud.models import load_model
from tastebud.observability import get_logger
from tastebud.registry import ModelLoadError, RegistryError, open_registry

log = get_logger("tastebud.features")


def _factor_model(context: TransformContext) -> tuple[Any, str] | None:
    """The production model when it (or a component of a hybrid) has factors."""
    registry = open_registry(context.settings, context.stores.artifacts)
    try:
        version = registry.get("production")
        model = registry.load("production", lambda folder: load_model(str(folder)))
    except (RegistryError, ModelLoadError) as error:
        log.info("no_production_factors", reason=str(error)[:200])
        return None
    candidates = [model, *getattr(model, "models_", [])]
    for candidate in candidates:
        if hasattr(candidate, "user_factors_") and hasattr(candidate, "item_factors_"):
            return candidate, version.model_version
    return None


def _factor_table(ids: pa.Array, factors: np.ndarray, version: str) -> pa.Table:
    matrix = np.asarray(factors, dtype=np.float32)
    flat = pa.array(matrix.reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, matrix.size + 1, matrix.shape[1], dtype=np.int32))
    return pa.table(
        {
            "entity_id": ids,
            "factors": pa.ListArray.from_arrays(offsets, flat),
            "model_version": pa.array([version] * len(ids), pa.string()),
        }
    )


def user_factors(context: TransformContext) -> pa.Table | None:
    found = _factor_model(context)
    if found is None:
        return None
    model, version = found
    return _factor_table(model.users_.ids, model.user_factors_, version)


def item_factors(context: TransformContext) -> pa.Table | None:
    found = _factor_model(context)
    if found is None:
        return None
    model, version = found
    return _factor_table(model.items_.ids, model.item_factors_, version)


def item_content_embeddings(context: TransformContext) -> pa.Table | None:
    """Item embeddings of the content-embedding ``production`` version when one exists;
    None before. Only embedded items count."""
    try:
        artifact = latest_artifact(registry_for(context.settings, context.stores))
    except (RegistryError, ModelLoadError) as error:
        log.warning("content_embeddings_unreadable", reason=str(error)[:200])
        return None
    if artifact is None or not len(artifact.item_ids):
        return None
    keep = np.flatnonzero(artifact.embedded)
    ids = pa.array([artifact.item_ids[i] for i in keep], pa.string())
    return _factor_table(ids, artifact.vectors[keep], artifact.version or "unknown").rename_columns(
        ["entity_id", "embedding", "embedding_version"]
    )
