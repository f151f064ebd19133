"""Explicit-rating predictors (issue 23): biased MF and SVD++, behind ``Recommender``.

Importing this package does not import numba: the SGD kernels compile on the first fit, and
a saved rating model predicts with numpy alone (what serving needs).
"""

from tastebud.models.rating.base import RatingPredictions, RatingRecommender, TrainingDiverged
from tastebud.models.rating.mf import BiasedMFRecommender, SVDppRecommender

RATING_MODELS = (BiasedMFRecommender.name, SVDppRecommender.name)

__all__ = [
    "RATING_MODELS",
    "BiasedMFRecommender",
    "RatingPredictions",
    "RatingRecommender",
    "SVDppRecommender",
    "TrainingDiverged",
]
