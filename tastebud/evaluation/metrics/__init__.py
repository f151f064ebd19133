"""Offline metrics, one module per family: accuracy, beyond-accuracy, factor coverage."""

from tastebud.evaluation.metrics.accuracy import ACCURACY_METRICS, Judged, judge
from tastebud.evaluation.metrics.beyond import (
    catalog_coverage,
    gini,
    intra_list_diversity,
    novelty,
    personalization,
)
from tastebud.evaluation.metrics.coverage import FactorCoverage, factor_coverage

__all__ = [
    "ACCURACY_METRICS",
    "FactorCoverage",
    "Judged",
    "catalog_coverage",
    "factor_coverage",
    "gini",
    "intra_list_diversity",
    "judge",
    "novelty",
    "personalization",
]
