"""A training recipe (matrix options + model + parameters) and fitting it on a log.

What ``train`` fits by default, what AutoML returns, what the registry's manifest records
under ``params`` and what the train job's quality gate refits: one small, JSON-able object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tastebud.config import EventTypeSpec
from tastebud.data.interactions import InteractionLog
from tastebud.data.matrix import InteractionMatrix, MatrixCache, MatrixOptions, build_matrix
from tastebud.models import make_model
from tastebud.models.base import Recommender

#: Builds the training matrix of the log for some options (an engine's ``interaction_matrix``).
MatrixSource = Callable[[MatrixOptions], InteractionMatrix]


@dataclass
class Configuration:
    """A full recipe: matrix options + a model (or a blend of models) with parameters."""

    matrix: dict[str, Any]
    model: str
    params: dict[str, Any]

    def build_model(self) -> Recommender:
        return make_model(self.model, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"matrix": self.matrix, "model": self.model, "params": self.params}


def fit_configuration(
    data: InteractionLog,
    configuration: Configuration,
    event_types: dict[str, EventTypeSpec] | None = None,
    matrix_cache: MatrixCache | None = None,
    matrix_source: MatrixSource | None = None,
) -> tuple[Recommender, InteractionMatrix]:
    """Fit a configuration on the whole log (AutoML's last step; plain `train`);
    ``matrix_source`` builds the matrix elsewhere (the Spark engine) instead of from ``data``."""
    options = MatrixOptions(**configuration.matrix)
    if matrix_source is not None:
        matrix = matrix_source(options)
    elif matrix_cache is not None:
        matrix = matrix_cache.get_or_build(data, options, event_types)
    else:
        matrix = build_matrix(data, options, event_types)
    return configuration.build_model().fit(matrix), matrix
