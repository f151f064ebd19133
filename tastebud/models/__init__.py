"""Recommenders behind one interface (``Recommender``), scikit-learn style.

Layer (docs/architecture.md): may import ``data``, ``stores`` and the core; never
``evaluation``, ``content``, ``training`` or anything above.
"""

from tastebud.models.base import ModelError, NotFittedError, Recommender
from tastebud.models.ease import CatalogTooLarge, EASERecommender
from tastebud.models.factors import ALSRecommender, BPRRecommender, gpu_available
from tastebud.models.hybrid import HybridRecommender, normalise
from tastebud.models.knn import ItemKNNRecommender
from tastebud.models.mllib import MLlibALSRecommender
from tastebud.models.neural import MultVAERecommender, NCFRecommender, TwoTowerRecommender
from tastebud.models.popularity import PopularityRecommender
from tastebud.models.rating import BiasedMFRecommender, SVDppRecommender
from tastebud.models.userknn import UserKNNRecommender

MODELS: dict[str, type[Recommender]] = dict(Recommender.registry)


def make_model(name: str, **params: object) -> Recommender:
    """A model by its registered name (``popularity``, ``itemknn``, ``als``, ``bpr``,
    ``ease``, ``hybrid``, ``mult-vae``, ``two-tower``, ``ncf``, ``userknn``, ``mllib-als``,
    and the rating predictors ``biased-mf`` and ``svdpp``) with hyperparameters."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}: use {', '.join(sorted(MODELS))}")
    return MODELS[name](**params)


def load_model(folder: str) -> Recommender:
    """Load any saved model, verifying checksums and shapes."""
    return Recommender.load(folder)


__all__ = [
    "MODELS",
    "ALSRecommender",
    "BPRRecommender",
    "BiasedMFRecommender",
    "CatalogTooLarge",
    "EASERecommender",
    "HybridRecommender",
    "ItemKNNRecommender",
    "MLlibALSRecommender",
    "ModelError",
    "MultVAERecommender",
    "NCFRecommender",
    "NotFittedError",
    "PopularityRecommender",
    "Recommender",
    "SVDppRecommender",
    "TwoTowerRecommender",
    "UserKNNRecommender",
    "gpu_available",
    "load_model",
    "make_model",
    "normalise",
]
