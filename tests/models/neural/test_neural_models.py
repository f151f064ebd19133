"""The neural models beyond the shared contract: real (small, seeded) training with quality
that can fail, numpy scoring that matches the trained network, fold-in, cold items from
content, serving through the factor path, and the refusals (no PyTorch, a diverging loss)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from interaction_data import cluster_of, clustered_table

from tastebud.data.interactions import from_table
from tastebud.data.matrix import InteractionMatrix, MatrixOptions, build_matrix
from tastebud.models import ModelError, PopularityRecommender, Recommender, make_model
from tastebud.models.neural import TrainingDiverged, torch_available
from tastebud.models.neural.vae import kl_weight

pytestmark = pytest.mark.skipif(not torch_available(), reason="needs tastebud[neural]")

VAE = {"hidden": 48, "latent": 12, "epochs": 60, "batch_size": 32}
TOWER = {"factors": 16, "hidden": 32, "epochs": 20, "batch_size": 64}
NCF = {"factors": 16, "mlp_layers": (32, 16), "epochs": 20, "batch_size": 256}
HELD_OUT = 2


@pytest.fixture(scope="module")
def split() -> tuple[InteractionMatrix, dict[str, set[str]]]:
    """Two random interactions of each user held out."""
    table = clustered_table(n_users=150, per_user=12, seed=3)
    rng = np.random.default_rng(3)
    chosen = np.concatenate([rng.permutation(12) < HELD_OUT for _ in range(150)])
    test = table.filter(pa.array(chosen))
    train = table.filter(pa.array(~chosen))
    held: dict[str, set[str]] = {}
    for user, item in zip(test["user_id"].to_pylist(), test["item_id"].to_pylist(), strict=True):
        held.setdefault(user, set()).add(item)
    return build_matrix(from_table(train), MatrixOptions()), held


def recall_at_10(model: Recommender, held: dict[str, set[str]]) -> float:
    users = sorted(held)
    ids, _ = model.recommend(users, 10)
    hits = [
        len(set(row) & held[user]) / len(held[user]) for user, row in zip(users, ids, strict=True)
    ]
    return float(np.mean(hits))


@pytest.mark.parametrize("name, params", [("mult-vae", VAE), ("two-tower", TOWER), ("ncf", NCF)])
def test_beats_popularity_on_held_out_interactions(name: str, params: dict, split) -> None:
    matrix, held = split
    popularity = recall_at_10(PopularityRecommender(half_life_days=None).fit(matrix), held)
    model = make_model(name, **params).fit(matrix)
    recall = recall_at_10(model, held)
    assert recall > popularity + 0.3, f"{name}: recall@10 {recall:.3f}, popularity {popularity:.3f}"
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert len(model.epoch_seconds_) == params["epochs"]


def test_same_random_state_same_model_and_another_differs(split) -> None:
    matrix, _ = split
    settings = {**VAE, "epochs": 5}
    first = make_model("mult-vae", **settings).fit(matrix)
    again = make_model("mult-vae", **settings).fit(matrix)
    other = make_model("mult-vae", **settings, random_state=7).fit(matrix)
    for key, value in first.weights_.items():
        np.testing.assert_array_equal(value, again.weights_[key])
    assert not np.allclose(first.weights_["output.weight"], other.weights_["output.weight"])


def test_kl_weight_rises_linearly_to_its_cap() -> None:
    assert kl_weight(0, 0.2, 100) == 0.0
    assert kl_weight(50, 0.2, 100) == pytest.approx(0.1)
    assert kl_weight(100, 0.2, 100) == pytest.approx(0.2)
    assert kl_weight(10_000, 0.2, 100) == pytest.approx(0.2)


def test_vae_numpy_scoring_matches_the_torch_network(split) -> None:
    import torch

    from tastebud.models.neural.vae import _network

    matrix, _ = split
    model = make_model("mult-vae", **{**VAE, "epochs": 3}).fit(matrix)
    net = _network(model.n_items, VAE["hidden"], VAE["latent"])
    net.load_state_dict({key: torch.from_numpy(value) for key, value in model.weights_.items()})
    net.eval()
    rows = np.arange(10)
    with torch.no_grad():
        logits, _, _ = net(torch.from_numpy(model.user_items_[rows].toarray() > 0).float(), 0.5)
    np.testing.assert_allclose(model.score_users(rows), logits.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, params", [("mult-vae", VAE), ("two-tower", TOWER)])
def test_fold_in_of_a_known_history_gives_that_users_scores(name: str, params: dict, split) -> None:
    matrix, _ = split
    model = make_model(name, **{**params, "epochs": 3}).fit(matrix)
    rows = np.array([0, 4, 9])
    folded = model.score_histories(model.user_items_[rows])
    np.testing.assert_allclose(folded, model.score_users(rows), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, params", [("mult-vae", VAE), ("two-tower", TOWER), ("ncf", NCF)])
def test_a_saved_model_serves_without_pytorch(
    name: str, params: dict, split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix, _ = split
    model = make_model(name, **{**params, "epochs": 3}).fit(matrix)
    model.save(tmp_path / "m")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    loaded = Recommender.load(tmp_path / "m")
    before = model.recommend(["u1", "u2"], 5, histories=[["i3"], []])
    after = loaded.recommend(["u1", "u2"], 5, histories=[["i3"], []])
    assert (before[0] == after[0]).all()
    with pytest.raises(ModelError, match=r"pip install 'tastebud\[neural\]'"):
        make_model(name, **params).fit(matrix)


@pytest.mark.parametrize("layers", [(32, 16, 8), ()])
def test_ncf_numpy_scoring_matches_the_torch_network(layers: tuple[int, ...], split) -> None:
    import torch

    from tastebud.models.neural.ncf import _network

    matrix, _ = split
    model = make_model("ncf", **{**NCF, "mlp_layers": layers, "epochs": 2}).fit(matrix)
    net = _network(len(model.users_), model.n_items, NCF["factors"], layers)
    net.load_state_dict({key: torch.from_numpy(value) for key, value in model.weights_.items()})
    net.eval()
    rows = np.arange(4)
    users = torch.from_numpy(np.repeat(rows, model.n_items))
    items = torch.from_numpy(np.tile(np.arange(model.n_items), len(rows)))
    with torch.no_grad():
        expected = net(users, items).numpy().reshape(len(rows), model.n_items)
    np.testing.assert_allclose(model.score_users(rows), expected, rtol=1e-4, atol=1e-5)


def test_a_diverging_loss_stops_training_with_a_clear_message(split) -> None:
    matrix, _ = split
    model = make_model("mult-vae", **{**VAE, "epochs": 4, "learning_rate": float("inf")})
    with pytest.raises(TrainingDiverged, match="lower learning_rate"):
        model.fit(matrix)
    assert not hasattr(model, "weights_")


# -- two-tower: content, cold items, serving ---------------------------------------------------


def content_vectors(n_items: int = 60, dim: int = 8, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Content that knows each item's cluster (a noisy one-hot), as genres would."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 0.3, (n_items, dim)).astype(np.float32)
    vectors[np.arange(n_items), np.arange(n_items) % 3] += 1.0
    return [f"i{i}" for i in range(n_items)], vectors


COLD = [f"i{i}" for i in range(48, 60)]


@pytest.fixture(scope="module")
def tower_with_content() -> Recommender:
    table = clustered_table(n_users=150, per_user=12, seed=5)
    warm = table.filter(pc.invert(pc.is_in(table["item_id"], pa.array(COLD))))
    matrix = build_matrix(from_table(warm), MatrixOptions())
    return make_model("two-tower", **TOWER).fit(matrix, content=content_vectors())


def test_cold_items_are_placed_from_content_alone(tower_with_content) -> None:
    model = tower_with_content
    ids, vectors = content_vectors()
    assert not set(COLD) & set(model.items_.ids.to_pylist())
    cold = model.content_item_factors(vectors[[ids.index(i) for i in COLD]])
    users = [f"u{i}" for i in range(60)]
    scores = model.user_factors_[model.users_.index(users)] @ cold.T
    best = [COLD[j] for j in np.argmax(scores, axis=1)]
    same = np.mean([cluster_of(i) == cluster_of(u) for u, i in zip(users, best, strict=True)])
    assert same > 0.9, f"only {same:.0%} of users' best cold item is in their cluster"
    with pytest.raises(ModelError, match="expects 8 dimensions"):
        model.content_item_factors(np.zeros((2, 5), np.float32))


def test_serving_retrieves_two_tower_items_through_the_factor_path(tower_with_content) -> None:
    from tastebud.content.similarity import ContentSimilarity
    from tastebud.ranking.snapshot import ServingModel, Snapshot

    model = tower_with_content
    serving = ServingModel.prepare(model, "v1", exact_threshold=10)  # no index: exact search
    rows = model.users_.index(["u0", "u1"])
    found, _ = serving.retriever.search(model.user_factors_[rows], 5)
    ids, _ = model.recommend(["u0", "u1"], 5, exclude_seen=False)
    assert [model.items_.id_of(row) for row in found] == [list(row) for row in ids]
    from tastebud.ranking.retrieval import HnswRetriever

    graph = HnswRetriever.build(model.item_factors_)  # the FAISS path of large catalogs
    approximate, _ = graph.search(model.user_factors_[rows], 5)
    assert (
        np.mean([len(set(a) & set(e)) / 5 for a, e in zip(approximate, found, strict=True)]) >= 0.8
    )
    ids_all, vectors = content_vectors()
    snapshot = Snapshot.build(serving, ContentSimilarity(ids_all, vectors), [])
    cold = snapshot.items.index(COLD)
    expected = model.content_item_factors(vectors[48:])
    np.testing.assert_allclose(snapshot.cold_factors[snapshot.cold_row[cold]], expected)
