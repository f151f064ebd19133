"""AutoML's search space: model families, their hyperparameter ranges, matrix options and
the seeds every search tries first.

The neural families (Mult-VAE, NeuMF, two-tower) train for a number of epochs whose upper
bound is set per search from a measured epoch (``neural_budget``), so one of their trials
fits the budget; their ranges are the papers' (Liang et al. 2018; He et al. 2017) narrowed
to what a trial of a few seconds to a minute can train.
"""

from __future__ import annotations

from typing import Any

import optuna

CLASSIC_FAMILIES = ("ease", "als", "itemknn", "userknn", "bpr", "popularity")
NEURAL_FAMILIES = ("mult-vae", "ncf", "two-tower")
FAMILIES = CLASSIC_FAMILIES + NEURAL_FAMILIES
TRANSFORMS = ("saturate", "none", "log", "binary", "bm25")
# The fewest epochs a trial of each neural family is worth running; the most it may run.
MIN_EPOCHS = {"mult-vae": 5, "ncf": 1, "two-tower": 1}
MAX_EPOCHS = {"mult-vae": 100, "ncf": 20, "two-tower": 20}
NCF_LAYERS = {"gmf": (), "32-16-8": (32, 16, 8), "64-32-16": (64, 32, 16)}


def suggest_matrix(trial: optuna.Trial, family: str, has_ratings: bool, has_time: bool) -> dict:
    options: dict[str, Any] = {}
    if has_ratings:
        options["unliked_rating_weight"] = trial.suggest_float("unliked_rating_weight", -0.5, 1.0)
    if has_time and trial.suggest_categorical("decay", [False, True]):
        options["half_life_days"] = trial.suggest_float("half_life_days", 7.0, 3650.0, log=True)
    if family in ("als", "ease", "itemknn"):
        # Confidence shapes for every kind of data: as given, saturated or logarithmic
        # repeats (counts), plain presence (binary), BM25 (popular items and long histories
        # weigh less); normalised so one typical interaction weighs 1.
        transform = trial.suggest_categorical("transform", list(TRANSFORMS))
        options["transform"] = transform
        if transform == "bm25":
            options["bm25_k1"] = trial.suggest_float("matrix_bm25_k1", 0.5, 200.0, log=True)
            options["bm25_b"] = trial.suggest_float("matrix_bm25_b", 0.0, 1.0)
        if transform != "binary":
            options["normalize"] = trial.suggest_categorical("normalize", [True, False])
    return options


def suggest_model(
    trial: optuna.Trial, family: str, max_epochs: dict[str, int] | None = None
) -> dict[str, Any]:
    """Hyperparameters of ``family``; ``max_epochs`` bounds the neural families' epochs."""
    if family in NEURAL_FAMILIES:
        top = (max_epochs or MAX_EPOCHS).get(family, MAX_EPOCHS[family])
        return _suggest_neural(trial, family, max(MIN_EPOCHS[family], top))
    if family == "ease":
        params = {"l2": trial.suggest_float("l2", 1.0, 5000.0, log=True)}
        if trial.suggest_categorical("ease_dropout", [False, True]):  # EDLAE
            params["dropout"] = trial.suggest_float("dropout", 0.05, 0.75)
        return params
    if family == "als":
        # Rendle et al. (2021), "Revisiting the performance of iALS": small regularization
        # scaled with the data, few factors on small data; alpha as the confidence slope.
        return {
            "factors": trial.suggest_categorical("factors", [16, 32, 64, 128, 192]),
            "regularization": trial.suggest_float("regularization", 1e-3, 10.0, log=True),
            "alpha": trial.suggest_float("alpha", 0.5, 50.0, log=True),
            "iterations": trial.suggest_int("iterations", 5, 30),
        }
    if family == "itemknn":
        return {
            "neighbors": trial.suggest_int("neighbors", 10, 500, log=True),
            "similarity": trial.suggest_categorical("similarity", ["bm25", "cosine"]),
            "bm25_k1": trial.suggest_float("bm25_k1", 0.2, 3.0),
            "bm25_b": trial.suggest_float("bm25_b", 0.0, 1.0),
        }
    if family == "userknn":
        return {
            "neighbors": trial.suggest_int("userknn_neighbors", 10, 400, log=True),
            "exponent": trial.suggest_float("userknn_exponent", 0.5, 4.0, log=True),
            "idf": trial.suggest_categorical("userknn_idf", [True, False]),
        }
    if family == "bpr":
        return {
            "factors": trial.suggest_categorical("bpr_factors", [32, 64, 128]),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.2, log=True),
            "regularization": trial.suggest_float("bpr_regularization", 1e-4, 0.1, log=True),
            "iterations": trial.suggest_int("bpr_iterations", 20, 200, log=True),
        }
    return {
        "half_life_days": trial.suggest_float("popularity_half_life_days", 1.0, 3650.0, log=True)
    }


def _suggest_neural(trial: optuna.Trial, family: str, top: int) -> dict[str, Any]:
    epochs = trial.suggest_int(f"{family}_epochs", MIN_EPOCHS[family], top, log=True)
    learning_rate = trial.suggest_float(f"{family}_learning_rate", 1e-4, 1e-2, log=True)
    if family == "mult-vae":
        return {
            "hidden": trial.suggest_categorical("vae_hidden", [200, 600]),
            "latent": trial.suggest_categorical("vae_latent", [64, 200]),
            "dropout": trial.suggest_float("vae_dropout", 0.2, 0.7),
            "beta_cap": trial.suggest_float("vae_beta_cap", 0.05, 1.0, log=True),
            "epochs": epochs,
            "learning_rate": learning_rate,
        }
    if family == "ncf":
        return {
            "factors": trial.suggest_categorical("ncf_factors", [16, 32, 64]),
            "mlp_layers": NCF_LAYERS[trial.suggest_categorical("ncf_layers", list(NCF_LAYERS))],
            "negatives": trial.suggest_int("ncf_negatives", 2, 8),
            "epochs": epochs,
            "learning_rate": learning_rate,
        }
    return {
        "factors": trial.suggest_categorical("tt_factors", [32, 64, 128]),
        "temperature": trial.suggest_float("tt_temperature", 0.02, 0.5, log=True),
        "id_dropout": trial.suggest_float("tt_id_dropout", 0.0, 0.5),
        "epochs": epochs,
        "learning_rate": learning_rate,
    }


SEEDS: list[dict[str, Any]] = [
    # The default configuration first: the search only ever returns something better.
    {"family": "ease", "l2": 200.0, "unliked_rating_weight": 0.2, "decay": False,
     "transform": "saturate", "normalize": True, "ease_dropout": False},
    # The floor every model must beat; milliseconds to fit.
    {"family": "popularity", "popularity_half_life_days": 30.0, "unliked_rating_weight": 0.2,
     "decay": False},
    {"family": "als", "factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15,
     "unliked_rating_weight": 0.2, "decay": False, "transform": "log", "normalize": False},
    {"family": "itemknn", "neighbors": 100, "similarity": "bm25", "bm25_k1": 1.2, "bm25_b": 0.75,
     "unliked_rating_weight": 0.2, "decay": False, "transform": "saturate", "normalize": True},
    {"family": "ease", "l2": 100.0, "unliked_rating_weight": 0.2, "decay": False,
     "transform": "saturate", "normalize": True, "ease_dropout": True, "dropout": 0.25},
    {"family": "userknn", "userknn_neighbors": 50, "userknn_exponent": 1.0, "userknn_idf": True,
     "unliked_rating_weight": 0.2, "decay": False},
]  # fmt: skip


def neural_seeds(max_epochs: dict[str, int]) -> list[dict[str, Any]]:
    """One trial per neural family the budget allows, at the models' defaults (epochs
    clipped to what fits)."""
    defaults: dict[str, dict[str, Any]] = {
        "mult-vae": {"vae_hidden": 600, "vae_latent": 200, "vae_dropout": 0.5,
                     "vae_beta_cap": 0.2, "mult-vae_learning_rate": 1e-3, "epochs": 50},
        "ncf": {"ncf_factors": 32, "ncf_layers": "gmf", "ncf_negatives": 4,
                "ncf_learning_rate": 1e-3, "epochs": 20},
        "two-tower": {"tt_factors": 64, "tt_temperature": 0.05, "tt_id_dropout": 0.3,
                      "two-tower_learning_rate": 3e-3, "epochs": 5},
    }  # fmt: skip
    seeds = []
    for family, top in max_epochs.items():
        params = dict(defaults[family])
        epochs = params.pop("epochs")
        params[f"{family}_epochs"] = max(MIN_EPOCHS[family], min(epochs, top))
        seeds.append({"family": family, "unliked_rating_weight": 0.2, "decay": False, **params})
    return seeds
