"""Accuracy metrics: a hand-computed example and a per-user reference on random batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_metrics as ref
import scipy.sparse as sp
from hypothesis import given, settings
from strategies import Batch, batches

from tastebud.evaluation.metrics.accuracy import ACCURACY_METRICS, judge

# user 0: relevant {1, 5}, its list hits at rank 2; user 1: relevant {3}, hit at rank 1,
# list of two items then padding; user 2: nothing relevant (left out of averages).
RECOMMENDED = np.array([[0, 1, 2], [3, 4, -1], [5, 6, 7]])
RELEVANT = sp.csr_matrix((np.ones(3), ([0, 0, 1], [1, 5, 3])), shape=(3, 10), dtype=np.float64)
LOG3 = 1 / math.log2(3)


@pytest.mark.parametrize(
    ("name", "k", "user0", "user1"),
    [
        ("precision", 3, 1 / 3, 1 / 3),  # a short list is still judged on 3 slots
        ("recall", 3, 1 / 2, 1.0),
        ("hitrate", 3, 1.0, 1.0),
        ("ndcg", 3, LOG3 / (1 + LOG3), 1.0),
        ("map", 3, (1 / 2) / 2, 1.0),
        ("mrr", 3, 1 / 2, 1.0),
        ("precision", 1, 0.0, 1.0),
        ("recall", 1, 0.0, 1.0),
        ("ndcg", 1, 0.0, 1.0),
        ("map", 1, 0.0, 1.0),
        ("mrr", 1, 0.0, 1.0),
        ("hitrate", 1, 0.0, 1.0),
        ("precision", 5, 1 / 5, 1 / 5),  # K beyond the lists: padded
        ("ndcg", 5, LOG3 / (1 + LOG3), 1.0),
    ],
)
def test_hand_computed(name: str, k: int, user0: float, user1: float) -> None:
    values = ACCURACY_METRICS[name](judge(RECOMMENDED, RELEVANT), k)
    assert values[:2] == pytest.approx([user0, user1])
    assert math.isnan(values[2])


def test_ideal_dcg_is_capped_at_k() -> None:
    # 3 relevant items, K = 2, both slots hit: NDCG and AP are 1, recall is 2/3.
    relevant = sp.csr_matrix(np.array([[1, 1, 1, 0]]))
    judged = judge(np.array([[2, 0]]), relevant)
    assert ACCURACY_METRICS["ndcg"](judged, 2)[0] == pytest.approx(1.0)
    assert ACCURACY_METRICS["map"](judged, 2)[0] == pytest.approx(1.0)
    assert ACCURACY_METRICS["recall"](judged, 2)[0] == pytest.approx(2 / 3)


def test_explicit_zeros_and_duplicates_in_relevant() -> None:
    relevant = sp.csr_matrix((np.array([0.0, 1.0, 1.0]), ([0, 0, 0], [0, 1, 1])), shape=(1, 3))
    relevant.has_canonical_format = False
    judged = judge(np.array([[0, 1]]), relevant)
    assert judged.hits.tolist() == [[False, True]] and judged.n_relevant.tolist() == [1]


@settings(max_examples=100, deadline=None)
@given(batches())
def test_matches_per_user_reference(batch: Batch) -> None:
    judged = judge(batch.recommended, batch.relevant)
    for k in (1, 3, 10):
        for name, metric in ACCURACY_METRICS.items():
            values = metric(judged, k)
            for user, relevant in enumerate(batch.relevant_sets):
                if not relevant:
                    assert math.isnan(values[user])
                    continue
                expected = ref.ACCURACY[name](batch.recommended[user].tolist(), relevant, k)
                assert values[user] == pytest.approx(expected), (name, k, user)


def test_bad_lists_are_refused() -> None:
    relevant = sp.csr_matrix((2, 4))
    with pytest.raises(ValueError, match="same item twice"):
        judge(np.array([[1, 1], [0, 2]]), relevant)
    with pytest.raises(ValueError, match=">= n_items"):
        judge(np.array([[1, 4], [0, 2]]), relevant)
    with pytest.raises(ValueError, match="other than -1"):
        judge(np.array([[1, -2], [0, 2]]), relevant)
    with pytest.raises(ValueError, match="aligned"):
        judge(np.array([[1, 2]]), relevant)
    with pytest.raises(ValueError, match="2-D"):
        judge(np.array([1, 2]), relevant)
    with pytest.raises(ValueError, match="integer"):
        judge(np.array([[1.0, 2.0], [0.0, 1.0]]), relevant)
    with pytest.raises(ValueError, match=r"scipy\.sparse"):
        judge(np.array([[1, 2], [0, 1]]), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="positive integer"):
        ACCURACY_METRICS["ndcg"](judge(np.array([[1, 2], [0, 1]]), relevant), 0)
