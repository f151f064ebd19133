"""evaluate_rankings: names, agreement with the per-metric functions, context handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_metrics as ref
import scipy.sparse as sp

from tastebud.evaluation import evaluate_rankings

RECOMMENDED = np.array([[0, 1, 2], [3, 4, -1], [5, 6, 7]])
RELEVANT = sp.csr_matrix((np.ones(3), ([0, 0, 1], [1, 5, 3])), shape=(3, 10))


def test_names_and_hand_values() -> None:
    popularity = np.arange(10)
    result = evaluate_rankings(
        RECOMMENDED, RELEVANT, ks=(3, 1), item_popularity=popularity, n_train_users=20
    )
    expected_names = {
        f"{name}@{k}"
        for k in (1, 3)
        for name in (
            "ndcg",
            "recall",
            "precision",
            "map",
            "mrr",
            "hitrate",
            "coverage",
            "novelty",
            "gini",
            "personalization",
        )
    }
    assert set(result) == expected_names | {"users_evaluated", "users_without_relevant"}
    assert result["users_evaluated"] == 2 and result["users_without_relevant"] == 1
    assert result["recall@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["mrr@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["hitrate@1"] == pytest.approx(0.5)
    assert result["coverage@3"] == pytest.approx(8 / 10)  # beyond metrics use all 3 lists
    assert result["coverage@1"] == pytest.approx(3 / 10)
    lists = RECOMMENDED.tolist()
    novelty = np.mean([ref.novelty(items, popularity.tolist(), 20, 3) for items in lists])
    assert result["novelty@3"] == pytest.approx(novelty)
    assert result["personalization@3"] == pytest.approx(ref.personalization(lists, 3))
    assert "ild@3" not in result


def test_ild_from_vectors_or_train_matrix() -> None:
    rng = np.random.default_rng(0)
    train = sp.csr_matrix(rng.integers(0, 2, size=(30, 10)).astype(float))
    from_matrix = evaluate_rankings(RECOMMENDED, RELEVANT, ks=(3,), train_matrix=train)
    from_vectors = evaluate_rankings(RECOMMENDED, RELEVANT, ks=(3,), item_vectors=train.T.toarray())
    expected = np.mean([ref.ild(items, train.T.toarray().tolist(), 3) for items in RECOMMENDED])
    assert from_matrix["ild@3"] == pytest.approx(expected)
    assert from_vectors["ild@3"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="train_matrix"):
        evaluate_rankings(RECOMMENDED, RELEVANT, train_matrix=sp.csr_matrix((4, 3)))


def test_nobody_with_relevant_items_gives_nan_not_an_error() -> None:
    result = evaluate_rankings(RECOMMENDED, sp.csr_matrix((3, 10)), ks=(2,))
    assert math.isnan(result["ndcg@2"]) and math.isnan(result["recall@2"])
    assert result["users_evaluated"] == 0 and result["users_without_relevant"] == 3
    assert result["coverage@2"] == pytest.approx(6 / 10)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one K"):
        evaluate_rankings(RECOMMENDED, RELEVANT, ks=())
    with pytest.raises(ValueError, match="positive integer"):
        evaluate_rankings(RECOMMENDED, RELEVANT, ks=(0,))
    with pytest.raises(ValueError, match="item_popularity"):
        evaluate_rankings(RECOMMENDED, RELEVANT, item_popularity=np.ones(3))


def test_scales_to_many_users() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 30_000, 5_000
    recommended = np.argsort(rng.random((n_users, 40)), axis=1)[:, :20]
    recommended += rng.integers(0, n_items - 40, (n_users, 1))
    nnz = 500_000
    relevant = sp.csr_matrix(
        (np.ones(nnz), (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
        shape=(n_users, n_items),
    )
    result = evaluate_rankings(
        recommended,
        relevant,
        item_popularity=rng.integers(0, 100, n_items),
        item_vectors=rng.normal(size=(n_items, 16)),
    )
    assert 0 <= result["ndcg@10"] <= 1 and result["users_evaluated"] > 25_000
