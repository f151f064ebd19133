"""Explicit-rating predictors (issue 23): biased MF, SVD++, item kNN on baseline residuals
and a learned blend of them, behind ``Recommender``.

Importing this package does not import numba: the SGD kernels compile on the first fit, and
a saved rating model predicts with numpy alone (what serving needs).
"""

from tastebud.models.rating.base import RatingPredictions, RatingRecommender, TrainingDiverged
from tastebud.models.rating.ensemble import RatingEnsembleRecommender
from tastebud.models.rating.knn import KNNBaselineRecommender
from tastebud.models.rating.mf import BiasedMFRecommender, SVDppRecommender

RATING_MODELS = (
    BiasedMFRecommender.name,
    SVDppRecommender.name,
    KNNBaselineRecommender.name,
    RatingEnsembleRecommender.name,
)

__all__ = [
    "RATING_MODELS",
    "BiasedMFRecommender",
    "KNNBaselineRecommender",
    "RatingEnsembleRecommender",
    "RatingPredictions",
    "RatingRecommender",
    "SVDppRecommender",
    "TrainingDiverged",
]
