"""Beyond-accuracy metrics: hand-computed examples and per-user references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_metrics as ref
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Batch, batches

from tastebud.evaluation.metrics.beyond import (
    catalog_coverage,
    gini,
    intra_list_diversity,
    novelty,
    personalization,
)
from tastebud.evaluation.metrics.lists import top_k


def test_coverage_and_gini_by_hand() -> None:
    lists = np.array([[0, 1], [1, 2], [3, -1]])
    assert catalog_coverage(lists, 5) == pytest.approx(4 / 5)
    two = np.array([[1, 2], [1, 3]])  # counts over 4 items [0, 2, 1, 1] -> sorted 0 1 1 2
    assert gini(two, 4) == pytest.approx((-3 * 0 - 1 * 1 + 1 * 1 + 3 * 2) / (4 * 4))
    assert gini(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    assert math.isnan(gini(np.full((2, 2), -1), 4))


def test_personalization_by_hand() -> None:
    # cosines: (A, B) = 1/2, (A, C) = 0, (B, C) = 0 -> mean 1/6; the empty list is ignored.
    lists = np.array([[0, 1], [0, 2], [3, 4], [-1, -1]])
    assert personalization(lists, 5) == pytest.approx(1 - 1 / 6)
    assert personalization(np.array([[0, 1], [1, 0]]), 2) == pytest.approx(0.0)
    assert math.isnan(personalization(np.array([[0, 1]]), 2))


def test_novelty_by_hand() -> None:
    popularity = np.array([10, 5, 0, 1])
    values = novelty(np.array([[0, 1], [2, -1], [-1, -1]]), popularity, n_train_users=10)
    assert values[0] == pytest.approx((0 + 1) / 2)  # shares 1 and 1/2
    assert values[1] == pytest.approx(-math.log2(0.1))  # unseen item counted as seen once
    assert math.isnan(values[2])
    shares = novelty(np.array([[1]]), popularity)  # without n_train_users: share of counts
    assert shares[0] == pytest.approx(-math.log2(5 / 17))


def test_ild_by_hand_dense_and_sparse() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    lists = np.array([[0, 1, 2], [0, -1, -1], [3, 0, -1]])
    expected = 1 - (0 + 2 / math.sqrt(2)) / 3
    for form in (vectors, sp.csr_matrix(vectors)):
        values = intra_list_diversity(lists, form)
        assert values[0] == pytest.approx(expected)
        assert math.isnan(values[1])
        assert values[2] == pytest.approx(1.0)  # a zero vector has cosine 0


def test_bad_context_is_refused() -> None:
    with pytest.raises(ValueError, match="item_vectors"):
        intra_list_diversity(np.array([[0, 5]]), np.ones((3, 2)))
    with pytest.raises(ValueError, match="item_popularity"):
        novelty(np.array([[0, 5]]), np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        novelty(np.array([[0]]), np.array([-1.0]))
    with pytest.raises(ValueError, match="n_items"):
        catalog_coverage(np.array([[0]]), 0)


@settings(max_examples=60, deadline=None)
@given(batches(max_users=10, max_items=15), st.integers(0, 2**32 - 1))
def test_match_per_user_reference(batch: Batch, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(batch.n_items, 3)) * (rng.random((batch.n_items, 1)) < 0.9)
    counts = rng.integers(0, 6, size=(8, batch.n_items)) * (rng.random((8, batch.n_items)) < 0.4)
    popularity = rng.integers(0, 20, batch.n_items)
    lists = batch.recommended.tolist()
    for k in (1, 2, 5):
        head = top_k(batch.recommended, k)
        assert catalog_coverage(head, batch.n_items) == pytest.approx(
            ref.coverage(lists, batch.n_items, k)
        )
        np.testing.assert_allclose(
            intra_list_diversity(head, vectors),
            [ref.ild(items, vectors.tolist(), k) for items in lists],
            atol=1e-9,
        )
        np.testing.assert_allclose(
            intra_list_diversity(head, sp.csr_matrix(counts.T)),
            [ref.ild(items, counts.T.tolist(), k) for items in lists],
            atol=1e-9,
        )
        np.testing.assert_allclose(
            novelty(head, popularity, n_train_users=12),
            [ref.novelty(items, popularity.tolist(), 12, k) for items in lists],
        )
        expected_gini = ref.gini(lists, batch.n_items, k)
        assert gini(head, batch.n_items) == pytest.approx(expected_gini, nan_ok=True)
        assert personalization(head, batch.n_items) == pytest.approx(
            ref.personalization(lists, k), nan_ok=True, abs=1e-9
        )
