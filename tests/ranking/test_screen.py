"""The screened CF top-N (``tastebud.ranking.screen``) returns exactly what the full product
returns: the same items, in the same order, with bit-identical scores, on generated factors
shaped like ALS's (a few long rows, many short ones), with exclusions, ties and every way
the screen hands back to the full product.

Serving runs BLAS on one thread (``retrieval.limit_threads``); so do these tests."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tastebud.ranking.retrieval import ExactRetriever, top_k
from tastebud.ranking.screen import MIN_ITEMS, FactorScreen


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def factors(n: int, dim: int, seed: int) -> np.ndarray:
    """ALS-like item factors: lognormal row norms (popular items far longer), clustered
    directions, and every 20th row in the same cluster (a pattern in the ids)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    rows = centres[np.arange(n) % 20] + 0.7 * rng.standard_normal((n, dim))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows * rng.lognormal(-3.0, 1.0, size=(n, 1))).astype(np.float32)


def full_top(item_factors: np.ndarray, query: np.ndarray, n: int, excluded: np.ndarray):
    scores = item_factors @ query
    scores[excluded] = -np.inf
    chosen = top_k(scores, n)
    return chosen, scores[chosen]


@pytest.mark.parametrize("n_items", [3_001, 3_002, 3_003, 4_000])  # every n % 4
def test_screened_top_is_the_full_products(n_items: int) -> None:
    item_factors = factors(n_items, 24, seed=n_items)
    screen = FactorScreen(item_factors)
    assert screen.check() is None
    rng = np.random.default_rng(1)
    screened = 0
    for round_ in range(60):
        query = (rng.standard_normal(24) * rng.uniform(0.1, 10)).astype(np.float32)
        if round_ % 3 == 0:  # a user like an item, as ALS users are
            query = item_factors[int(rng.integers(n_items))] * np.float32(30)
        n = int(rng.choice([1, 7, 100, 500]))
        excluded = rng.choice(n_items, size=int(rng.integers(0, 300)), replace=False)
        if round_ % 5 == 0:  # the last rows, which the full product computes apart
            excluded = np.arange(n_items - 3, n_items)
        expected = full_top(item_factors, query, n, excluded)
        found = screen.top(query, n, excluded)
        if found is None:
            continue
        screened += 1
        np.testing.assert_array_equal(found[0], expected[0])
        assert found[1].tobytes() == expected[1].tobytes()  # bit for bit
    assert screened >= 55  # it screened, rather than handing back


def test_scores_of_gathered_rows_match_the_full_product_bit_for_bit() -> None:
    item_factors = factors(5_003, 64, seed=3)
    screen = FactorScreen(item_factors)
    query = np.random.default_rng(2).standard_normal(64).astype(np.float32)
    full = item_factors @ query
    for rows in (np.arange(5_003), np.array([5_002, 0, 5_000, 17]), np.array([4_999])):
        assert screen.exact(query, rows).tobytes() == full[rows].tobytes()


def test_ties_are_ordered_as_the_full_product_orders_them() -> None:
    item_factors = factors(3_000, 16, seed=5)
    strong = item_factors[0] * np.float32(40)
    tied = np.array([2_999, 10, 1_500, 11, 700, 2_000])  # six items score exactly the same
    item_factors[tied] = strong
    screen = FactorScreen(item_factors)
    query = strong.copy()
    none = np.zeros(0, np.int64)
    # The tie is inside the top 20: lower index first, exactly as the full product.
    found = screen.top(query, 20, none)
    expected = full_top(item_factors, query, 20, none)
    assert found is not None
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_array_equal(found[0][:6], np.sort(tied))
    # The cut falls inside the tie: the same scores, the lowest indices of the tie.
    found = screen.top(query, 3, none)
    expected = full_top(item_factors, query, 3, none)
    assert found is not None
    assert found[1].tobytes() == expected[1].tobytes()
    np.testing.assert_array_equal(found[0], np.sort(tied)[:3])


def test_the_screen_hands_back_when_it_cannot_be_sure() -> None:
    item_factors = factors(3_000, 16, seed=7)
    screen = FactorScreen(item_factors)
    query = item_factors[5] * np.float32(20)
    # Fewer items left than asked for.
    assert screen.top(query, 500, np.arange(2_600)) is None
    # A query that is not finite.
    assert screen.top(np.full(16, np.nan, np.float32), 10, np.zeros(0, np.int64)) is None
    # Every sampled row excluded: no threshold to guess from.
    screen.sampled = np.arange(0, 3_000, 7)
    assert screen.top(query, 10, screen.sampled) is None
    # A sample of the best rows only: the guessed threshold is too high to be sure.
    best = np.argsort(-(item_factors @ query))[:200]
    screen.sampled = np.sort(best)
    assert screen.top(query, 100, np.zeros(0, np.int64)) is None


def test_the_retriever_screens_large_catalogs_and_falls_back_to_the_full_product() -> None:
    item_factors = factors(MIN_ITEMS + 3, 32, seed=11)
    screened = ExactRetriever(item_factors, screen=True)
    plain = ExactRetriever(item_factors)  # the default: [ranking.candidates] exact_screen
    assert screened.screen is not None and plain.screen is None
    rng = np.random.default_rng(4)
    for _ in range(20):
        query = item_factors[int(rng.integers(len(item_factors)))] * np.float32(25)
        seen = [rng.choice(len(item_factors), size=50, replace=False)]
        for n in (20, 500):
            got, want = screened.search(query, n, seen), plain.search(query, n, seen)
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1].tobytes() == want[1].tobytes()
    # More asked for than remain: the full product pads with -1 / NaN, as before.
    everything = [np.arange(len(item_factors) - 5)]
    got = screened.search(item_factors[0], 10, everything)
    want = plain.search(item_factors[0], 10, everything)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert (got[0][0, 5:] == -1).all()


def test_small_or_broken_catalogs_get_no_screen() -> None:
    assert FactorScreen.build(factors(MIN_ITEMS - 1, 8, seed=1)) is None
    broken = factors(MIN_ITEMS, 8, seed=1)
    broken[3, 2] = np.inf
    assert FactorScreen.build(broken) is None
    assert ExactRetriever(factors(500, 8, seed=2), screen=True).screen is None
