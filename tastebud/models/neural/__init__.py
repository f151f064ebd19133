"""Neural recommenders (issue 23): Mult-VAE, a two-tower model with content, NeuMF.

Importing this package does not import PyTorch: the classes register with the model
registry here, and training imports torch on first use (``tastebud[neural]``). Scoring uses
numpy only, so a saved neural model serves without PyTorch.
"""

from tastebud.models.neural._torch import TrainingDiverged, torch_available
from tastebud.models.neural.ncf import NCFRecommender
from tastebud.models.neural.two_tower import TwoTowerRecommender
from tastebud.models.neural.vae import MultVAERecommender

__all__ = [
    "MultVAERecommender",
    "NCFRecommender",
    "TrainingDiverged",
    "TwoTowerRecommender",
    "torch_available",
]
