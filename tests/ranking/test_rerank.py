"""Re-ranking components: normalisation, the bounded recency boost, and the greedy selection
(MMR, creator caps, category balance)."""

from __future__ import annotations

import numpy as np
import pytest
from serving_world import unit_rows

from tastebud.ranking.rerank import intra_list_diversity, minmax, recency_boost, select


def test_minmax_scales_to_unit_range_and_zeroes_missing() -> None:
    out = minmax(np.array([2.0, 4.0, np.nan, 3.0]))
    assert out.tolist() == [0.0, 1.0, 0.0, 0.5]
    assert minmax(np.array([7.0, 7.0])).tolist() == [1.0, 1.0]
    assert minmax(np.array([np.nan])).tolist() == [0.0]


def test_recency_boost_decays_and_is_capped() -> None:
    boost = recency_boost(np.array([0.0, 14.0, 28.0, np.nan, -5.0]), 0.2, 14.0, 0.15)
    assert boost[0] == pytest.approx(0.15)  # 0.2 capped at 0.15
    assert boost[1] == pytest.approx(0.1)
    assert boost[2] == pytest.approx(0.05)
    assert boost[3] == 0.0  # unknown age: no boost
    assert boost[4] == pytest.approx(0.15)  # a future date counts as new


def test_a_tiny_half_life_gives_no_boost_to_old_items_without_a_warning() -> None:
    """Fuzzing sent half_life_days=5e-324 as an override: age / half_life overflowed."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boost = recency_boost(np.array([0.0, 3.0, 400.0]), 0.2, 5e-324, 0.15)
    assert boost[0] == pytest.approx(0.15) and boost[1] == 0.0 and boost[2] == 0.0


def test_without_diversity_or_caps_selection_is_the_relevance_order() -> None:
    relevance = np.random.default_rng(1).random(50)
    chosen = select(relevance, 10, vectors=unit_rows(50, 8), diversity=0.0).order
    assert chosen.tolist() == np.argsort(-relevance)[:10].tolist()


def test_mmr_trades_relevance_for_diversity() -> None:
    # Items 0-4 are near-copies of one vector and the most relevant; 5-9 point elsewhere.
    base = unit_rows(6, 16, seed=3)
    vectors = np.vstack([base[0] + 0.01 * unit_rows(5, 16, seed=4), base[1:]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.99, 0.98, 0.97, 0.96, 0.8, 0.79, 0.78, 0.77, 0.76])[:10]
    vectors = np.vstack([vectors, unit_rows(4, 16, seed=5)])[:10]
    plain = select(relevance, 5, vectors=vectors, diversity=0.0).order
    diverse = select(relevance, 5, vectors=vectors, diversity=0.5).order
    assert plain.tolist() == [0, 1, 2, 3, 4]
    assert diverse[0] == 0  # the first pick is always the most relevant
    assert len(set(diverse.tolist()) & {0, 1, 2, 3, 4}) < 3
    assert intra_list_diversity(vectors[diverse]) > intra_list_diversity(vectors[plain])


def test_creator_cap_limits_each_creator_share() -> None:
    relevance = np.linspace(1.0, 0.0, 20)
    creators = np.array([0] * 10 + list(range(1, 11)))  # the 10 best items share creator 0
    chosen = select(relevance, 10, creators=creators, creator_share=0.3)
    picked = creators[chosen.order]
    assert (picked == 0).sum() == 3
    assert chosen.relaxed == 0
    assert chosen.order[:3].tolist() == [0, 1, 2]


def test_a_cap_that_cannot_be_met_is_relaxed_and_counted() -> None:
    relevance = np.linspace(1.0, 0.5, 6)
    creators = np.zeros(6, dtype=np.int64)  # one creator only
    chosen = select(relevance, 5, creators=creators, creator_share=0.2)
    assert len(chosen.order) == 5 and chosen.relaxed == 4


def test_category_balance_and_items_without_a_code() -> None:
    relevance = np.linspace(1.0, 0.0, 12)
    categories = np.array([0, 0, 0, 0, 0, 0, 1, 1, -1, -1, 2, 2])
    chosen = select(relevance, 6, categories=categories, category_share=0.34)
    counts = np.bincount(categories[chosen.order][categories[chosen.order] >= 0])
    assert counts.max() <= 2
    assert -1 in categories[chosen.order].tolist()  # uncategorised items are never capped


def test_k_larger_than_the_candidates() -> None:
    assert len(select(np.array([0.3, 0.2]), 10).order) == 2
    assert len(select(np.zeros(0), 10).order) == 0
