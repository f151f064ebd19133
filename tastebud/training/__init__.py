"""Training: interaction logs in, preference matrices, AutoML, the train pipeline, and
whole offline evaluations.

Layer (docs/architecture.md): may import ``engines``, ``models``, ``evaluation``, ``data``,
``registry``, ``stores`` and the core; never ``content``, ``signals`` or anything above.
"""

from tastebud.data.interactions import (
    InteractionLog,
    InteractionsError,
    from_table,
    read_event_store,
    read_interactions_file,
)
from tastebud.data.matrix import InteractionMatrix, MatrixCache, MatrixOptions, build_matrix
from tastebud.training.automl import AutoML, BudgetTooSmall, SearchResult
from tastebud.training.configuration import Configuration, fit_configuration
from tastebud.training.pipeline import TrainingResult, default_configuration, train

__all__ = [
    "AutoML",
    "BudgetTooSmall",
    "Configuration",
    "InteractionLog",
    "InteractionMatrix",
    "InteractionsError",
    "MatrixCache",
    "MatrixOptions",
    "SearchResult",
    "TrainingResult",
    "build_matrix",
    "default_configuration",
    "fit_configuration",
    "from_table",
    "read_event_store",
    "read_interactions_file",
    "train",
]
