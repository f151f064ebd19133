"""One contract every model honours (the implicit RecommenderBaseTestMixin idea)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from interaction_data import cluster_of, clustered_log

from tastebud.data.matrix import InteractionMatrix, MatrixOptions, build_matrix
from tastebud.models import MODELS, ModelError, NotFittedError, Recommender, make_model
from tastebud.models.neural import torch_available
from tastebud.spark_runtime import missing_runtime

# Small, fast settings per model; the contract must hold for all of them.
SETTINGS: dict[str, dict] = {
    "popularity": {"half_life_days": 30.0},
    "itemknn": {"neighbors": 20},
    "userknn": {"neighbors": 20},
    "als": {"factors": 8, "iterations": 8, "regularization": 0.05},
    "bpr": {"factors": 8, "iterations": 60, "learning_rate": 0.05},
    "ease": {"l2": 10.0},
    "hybrid": {
        "components": [("ease", {"l2": 10.0}), ("popularity", {"half_life_days": None})],
        "weights": [1.0, 0.2],
    },
    "mult-vae": {"hidden": 32, "latent": 8, "epochs": 60, "batch_size": 32},
    "two-tower": {"factors": 16, "hidden": 32, "epochs": 15, "batch_size": 64},
    "ncf": {"factors": 8, "mlp_layers": (16, 8), "epochs": 15, "batch_size": 256},
    # Rating predictors learn the matrix values as ratings (here: rating strengths).
    "biased-mf": {"factors": 8, "epochs": 100, "learning_rate": 0.05, "regularization": 0.01},
    "svdpp": {"factors": 8, "epochs": 40, "learning_rate": 0.02, "regularization": 0.02},
    "knn-baseline": {"neighbors": 10, "shrinkage": 10.0},
    "rating-ensemble": {
        "members": [
            (
                "biased-mf",
                {"factors": 8, "epochs": 100, "learning_rate": 0.05, "regularization": 0.01},
            ),
            ("svdpp", {"factors": 8, "epochs": 40, "learning_rate": 0.02, "regularization": 0.02}),
            ("knn-baseline", {"neighbors": 10}),
        ],
        "seeds": 1,
    },
    "mllib-als": {"factors": 8, "iterations": 8, "regularization": 0.01, "blocks": 2},
}
# Without the optional extra (tastebud[neural]) the neural models are registered but cannot
# train: their contract runs where PyTorch is installed (make test installs it).
NEURAL = {"mult-vae", "two-tower", "ncf"}
REGISTERED = set(SETTINGS)
if not torch_available():
    SETTINGS = {name: params for name, params in SETTINGS.items() if name not in NEURAL}
# Spark MLlib's ALS (tastebud[spark] and a Java runtime) runs where Spark does (make test,
# CI); TASTEBUD_REQUIRE_SERVICES=1 makes it required there (tests/engines/conftest.py).
if missing_runtime() is not None:
    SETTINGS = {name: params for name, params in SETTINGS.items() if name != "mllib-als"}
PERSONALISED = [name for name in SETTINGS if name != "popularity"]


def test_every_registered_model_is_under_contract() -> None:
    assert set(MODELS) == REGISTERED


@pytest.fixture(scope="module")
def matrix() -> InteractionMatrix:
    return build_matrix(clustered_log(), MatrixOptions())


@pytest.fixture(scope="module", params=sorted(SETTINGS))
def fitted(request: pytest.FixtureRequest, matrix: InteractionMatrix) -> Recommender:
    return make_model(request.param, **SETTINGS[request.param]).fit(matrix)


def test_fit_returns_self_and_learned_state_ends_in_underscore(matrix: InteractionMatrix) -> None:
    for name, params in SETTINGS.items():
        model = make_model(name, **params)
        before = set(vars(model))
        assert model.fit(matrix) is model
        learned = set(vars(model)) - before
        assert learned and all(attribute.endswith("_") for attribute in learned), name


def test_params_round_trip_and_unknown_params_are_refused() -> None:
    for name, params in SETTINGS.items():
        model = make_model(name, **params)
        assert {k: model.get_params()[k] for k in params} == params
        clone = type(model)(**model.get_params())
        assert clone.get_params() == model.get_params()
        with pytest.raises(ModelError):
            model.set_params(no_such_parameter=1)


def test_unfitted_model_says_so() -> None:
    for name, params in SETTINGS.items():
        with pytest.raises(NotFittedError):
            make_model(name, **params).recommend(["u1"], 5)


def test_recommend_ranks_best_first_without_seen_items(
    fitted: Recommender, matrix: InteractionMatrix
) -> None:
    users = ["u0", "u1", "u2", "u50"]
    ids, scores = fitted.recommend(users, 8)
    assert ids.shape == (4, 8) and scores.shape == (4, 8)
    for row, user in enumerate(users):
        assert all(np.diff(scores[row]) <= 1e-6)
        seen = set(matrix.items.id_of(matrix.seen()[matrix.users.index_of(user)].indices))
        assert not seen & set(ids[row]), "a training item was recommended"
        assert len(set(ids[row])) == 8


def test_score_agrees_with_recommend(fitted: Recommender) -> None:
    ids, scores = fitted.recommend(["u3"], 5)
    np.testing.assert_allclose(fitted.score("u3", list(ids[0])), scores[0], rtol=1e-4, atol=1e-5)
    assert np.isnan(fitted.score("u3", ["no-such-item"])[0])


def test_candidates_and_filters_are_honoured(fitted: Recommender) -> None:
    candidates = [f"i{i}" for i in range(0, 60, 2)]
    ids, _ = fitted.recommend(["u4"], 5, items=candidates, filter_items=["i0", "i2"])
    chosen = {item for item in ids[0] if item is not None}
    assert chosen <= set(candidates) - {"i0", "i2"}


def test_unknown_user_gets_the_popularity_list_not_an_error(fitted: Recommender) -> None:
    ids, scores = fitted.recommend(["nobody", "u0"], 5)
    popular = np.argsort(-fitted.popularity_, kind="stable")[:5]
    assert list(ids[0]) == fitted.items_.id_of(popular)
    assert np.isfinite(scores[0]).all()


def test_short_catalog_pads_with_none(fitted: Recommender) -> None:
    ids, scores = fitted.recommend(["u0"], 5, items=["i1", "i4"], exclude_seen=False)
    assert list(ids[0][2:]) == [None, None, None]
    assert np.isnan(scores[0][2:]).all()


def test_similar_items_exclude_the_item_itself(fitted: Recommender) -> None:
    ids, _ = fitted.similar_items(["i0", "nope"], 5)
    assert "i0" not in ids[0] and all(ids[1] == None)  # noqa: E711


def test_item_similarity_agrees_with_similar_items(fitted: Recommender) -> None:
    """Pairwise similarity ranks neighbours as ``similar_items`` does (explanations use it)."""
    ids, scores = fitted.similar_items(["i0", "i3"], 4)
    columns = fitted.items_.index(["i0", "i3"])
    for row, (id_row, score_row) in enumerate(zip(ids, scores, strict=True)):
        known = [item for item in id_row if item is not None]
        pairwise = fitted.item_similarity(columns[row : row + 1], fitted.items_.index(known))
        assert pairwise.shape == (1, len(known))
        np.testing.assert_allclose(pairwise[0], score_row[: len(known)], rtol=1e-4, atol=1e-5)
    assert fitted.item_similarity(columns, np.zeros(0, np.int64)).shape == (2, 0)


def test_save_and_load_give_the_same_recommendations(fitted: Recommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(fitted)
    assert json.dumps(loaded.get_params(), sort_keys=True) == json.dumps(
        fitted.get_params(), sort_keys=True
    )
    before = fitted.recommend(["u1", "u7", "nobody"], 6)
    after = loaded.recommend(["u1", "u7", "nobody"], 6)
    assert (before[0] == after[0]).all()
    np.testing.assert_allclose(before[1], after[1], rtol=1e-5)


def test_a_changed_file_is_refused_on_load(fitted: Recommender, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "m")
    state = folder / "state.npz"
    state.write_bytes(state.read_bytes() + b"tampered")
    with pytest.raises(ModelError, match="checksum"):
        Recommender.load(folder)


@pytest.mark.parametrize("name", PERSONALISED)
def test_personalised_models_learn_the_planted_clusters(
    name: str, matrix: InteractionMatrix
) -> None:
    model = make_model(name, **SETTINGS[name]).fit(matrix)
    users = [f"u{i}" for i in range(30)]
    ids, _ = model.recommend(users, 5)
    same = np.mean(
        [
            cluster_of(item) == cluster_of(user)
            for user, row in zip(users, ids, strict=True)
            for item in row
        ]
    )
    assert same > 0.6, f"{name}: only {same:.0%} in-cluster (chance is 33%)"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_fold_in_history_personalises_an_anonymous_session(
    name: str, matrix: InteractionMatrix
) -> None:
    model = make_model(name, **SETTINGS[name]).fit(matrix)
    history = [f"i{i}" for i in range(0, 30, 3)]  # cluster 0 items
    ids, _ = model.recommend(["anonymous"], 5, histories=[history])
    assert not set(history) & set(ids[0])
    if name != "popularity":
        assert np.mean([cluster_of(item) == 0 for item in ids[0]]) >= 0.6


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_fold_in_of_a_training_history_gives_back_the_trained_user(
    name: str, matrix: InteractionMatrix
) -> None:
    """The public, batched fold-in solves the training objective: a training user's own
    history gives back their trained factors (ALS), and scoring a history equals scoring
    the user. Models without user factors say so."""
    model = make_model(name, **SETTINGS[name]).fit(matrix)
    rows = np.arange(0, 40)
    histories = model.user_items_[rows]
    # No closed-form fold-in: BPR averages the history's items, NeuMF embeds a history as the
    # mean of its items' fans, a rating model folds in which items a session chose (its
    # items carry no ratings) (approximate by design, docs/models.md).
    if name not in ("bpr", "ncf", "biased-mf", "svdpp", "knn-baseline", "rating-ensemble"):
        np.testing.assert_allclose(
            model.score_histories(histories), model.score_users(rows), rtol=1e-3, atol=1e-3
        )
    if not hasattr(model, "user_factors_"):
        with pytest.raises(ModelError, match="no user factors"):
            model.fold_in(histories)
        return
    folded = model.fold_in(histories)
    assert folded.shape == (len(rows), model.item_factors_.shape[1])
    if name in ("als", "mllib-als"):  # MLlib's float32 Cholesky against a float64 solve
        error = np.linalg.norm(folded - model.user_factors_[rows], axis=1)
        tolerance = 1e-4 if name == "als" else 1e-3
        assert (error <= tolerance * np.linalg.norm(model.user_factors_[rows], axis=1)).all()
    with pytest.raises(ModelError, match="item columns"):
        model.fold_in(histories[:, :-1])


def test_als_fold_in_is_implicit_confidence_alpha_times_value(matrix: InteractionMatrix) -> None:
    """Hu-Koren-Volinsky as implicit trains it: confidence alpha*r on observed items (not
    1 + alpha*r), 1 elsewhere; checked against the normal equations solved here."""
    model = make_model("als", factors=8, iterations=8, alpha=3.0, regularization=0.1)
    model.fit(matrix)
    items = model.item_factors_.astype(np.float64)
    history = model.user_items_[7]
    confidence = 3.0 * history.data.astype(np.float64)
    chosen = items[history.indices]
    a = items.T @ items + 0.1 * np.eye(8) + (chosen.T * (confidence - 1.0)) @ chosen
    b = (chosen.T * confidence).sum(axis=1)
    np.testing.assert_allclose(model.fold_in(history)[0], np.linalg.solve(a, b), rtol=1e-3,
                               atol=1e-5)  # fmt: skip
    ones_plus = np.linalg.solve(a + chosen.T @ chosen, (chosen.T * (1 + confidence)).sum(axis=1))
    assert not np.allclose(model.fold_in(history)[0], ones_plus, rtol=1e-2)


def test_ease_refuses_or_approximates_a_catalog_above_its_limit(matrix: InteractionMatrix) -> None:
    from tastebud.models import CatalogTooLarge, EASERecommender

    with pytest.raises(CatalogTooLarge, match="max_items=20"):
        EASERecommender(l2=10.0, max_items=20, on_large="error").fit(matrix)
    with pytest.warns(UserWarning, match="keeping the 20 most popular"):
        model = EASERecommender(l2=10.0, max_items=20).fit(matrix)
    assert len(model.kept_items_) == 20 and model.weights_.shape == (20, 20)
    kept = set(model.items_.id_of(model.kept_items_))
    ids, _ = model.recommend(["u0", "u1"], 5)
    assert {item for row in ids for item in row} <= kept
    assert EASERecommender.memory_bytes(15_000) == 3 * 8 * 15_000**2  # 5.4 GB: the default cap


def test_hybrid_blend_is_the_weighted_sum_of_normalised_scores(matrix: InteractionMatrix) -> None:
    from tastebud.models import EASERecommender, HybridRecommender, PopularityRecommender, normalise

    ease = EASERecommender(l2=10.0).fit(matrix)
    popularity = PopularityRecommender(half_life_days=None).fit(matrix)
    hybrid = HybridRecommender.from_fitted([ease, popularity], [1.0, 0.5])
    rows = np.array([0, 5, 9])
    expected = normalise(ease.score_users(rows), "zscore") + 0.5 * normalise(
        popularity.score_users(rows), "zscore"
    )
    np.testing.assert_allclose(hybrid.score_users(rows), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="2 components but 1 weights"):
        HybridRecommender(components=[("ease", {}), ("popularity", {})], weights=[1.0]).fit(matrix)


def test_ease_dropout_regularizes_popular_items_more(matrix: InteractionMatrix) -> None:
    """EDLAE's closed form: dropout p adds p/(1-p) x each item's own count to its L2."""
    from tastebud.models import EASERecommender

    plain = EASERecommender(l2=10.0).fit(matrix)
    assert np.array_equal(EASERecommender(l2=10.0, dropout=0.0).fit(matrix).weights_,
                          plain.weights_)  # fmt: skip
    dropped = EASERecommender(l2=10.0, dropout=0.5).fit(matrix)
    # p = 0.5 doubles each diagonal: weights shrink (more regularized), the ranking survives
    assert np.abs(dropped.weights_).sum() < np.abs(plain.weights_).sum()
    ids, _ = dropped.recommend(["u0"], 5)
    assert np.mean([cluster_of(item) == cluster_of("u0") for item in ids[0]]) >= 0.6
    with pytest.raises(ModelError, match="dropout"):
        EASERecommender(dropout=1.0).fit(matrix)
