"""CF candidate retrieval: exact scoring against brute force, HNSW recall and exclusion, the
index as a checksummed artifact, and the exact/index choice by catalog size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.ranking.index_artifact import (
    INDEX_NAME,
    IndexChecksumError,
    IndexShapeError,
    load_index,
    save_index,
)
from tastebud.ranking.retrieval import (
    ExactRetriever,
    HnswRetriever,
    RetrievalError,
    Retriever,
    build_retriever,
    top_k,
)
from tastebud.ranking_config import CandidateSettings
from tastebud.stores import ArtifactStore


def clustered(
    n_items: int, dim: int, n_queries: int, seed: int = 0, clusters: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Items and user vectors around shared taste centres, item norms uneven (popularity)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    items = centres[rng.integers(0, clusters, n_items)] + 0.5 * rng.standard_normal((n_items, dim))
    items *= rng.lognormal(0.0, 0.3, (n_items, 1))
    users = centres[rng.integers(0, clusters, n_queries)] + 0.5 * rng.standard_normal(
        (n_queries, dim)
    )
    return items.astype(np.float32), users.astype(np.float32)


def brute_force(
    items: np.ndarray, user: np.ndarray, n: int, excluded: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    scores = items.astype(np.float64) @ user.astype(np.float64)
    order = np.argsort(-scores, kind="stable")
    if excluded is not None:
        order = order[~np.isin(order, excluded)]
    return order[:n], scores[order[:n]]


def recall(expected: np.ndarray, found: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b[b >= 0])) for a, b in zip(expected, found, strict=True))
    return hits / expected.size


@pytest.fixture(scope="module")
def big() -> tuple[np.ndarray, np.ndarray]:
    return clustered(20_000, 32, 200)


@pytest.fixture(scope="module")
def hnsw(big: tuple[np.ndarray, np.ndarray]) -> HnswRetriever:
    return HnswRetriever.build(big[0])


# -- exact ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_items", "n"), [(50, 10), (5_000, 7), (50_000, 500), (3_000, 3_000)])
def test_exact_equals_brute_force(n_items: int, n: int) -> None:
    items, users = clustered(n_items, 16, 5, seed=n_items)
    retriever = ExactRetriever(items)
    indices, scores = retriever.search(users, n)
    assert indices.shape == scores.shape == (5, n)
    for row, user in enumerate(users):
        expected, expected_scores = brute_force(items, user, n)
        np.testing.assert_array_equal(indices[row], expected)
        np.testing.assert_allclose(scores[row], expected_scores, rtol=1e-4, atol=1e-4)
    one, one_scores = retriever.search(users[0], n)  # a single vector: the matvec path
    np.testing.assert_array_equal(one[0], indices[0])
    np.testing.assert_allclose(one_scores[0], scores[0], rtol=1e-5, atol=1e-5)


def test_exact_exclusion_still_returns_n_items() -> None:
    items, users = clustered(2_000, 16, 3)
    retriever = ExactRetriever(items)
    top, _ = retriever.search(users, 50)
    seen = [top[0][:30], np.array([-1, 5_000, *top[1][:10]]), np.empty(0, np.int64)]
    indices, scores = retriever.search(users, 50, exclude=seen)
    for row, user in enumerate(users):
        allowed = seen[row][(seen[row] >= 0) & (seen[row] < len(items))]
        assert not np.isin(indices[row], allowed).any()
        expected, expected_scores = brute_force(items, user, 50, allowed)
        np.testing.assert_array_equal(indices[row], expected)
        np.testing.assert_allclose(scores[row], expected_scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(indices[2], top[2])


def test_exact_pads_when_n_exceeds_what_is_left() -> None:
    items, users = clustered(10, 4, 2)
    retriever = ExactRetriever(items)
    indices, scores = retriever.search(users, 15, exclude=[np.array([0, 1, 2]), None])
    assert (indices[0, :7] >= 0).all() and (indices[0, 7:] == -1).all()
    assert np.isnan(scores[0, 7:]).all() and np.isfinite(scores[0, :7]).all()
    assert sorted(indices[1, :10]) == list(range(10)) and (indices[1, 10:] == -1).all()
    assert np.all(np.diff(scores[1, :10]) <= 0)


def test_top_k_is_exact_when_scores_are_sorted_by_position() -> None:
    # A sampled threshold over scores that rise along the array must still be exact.
    scores = np.linspace(-1.0, 1.0, 100_000, dtype=np.float32)
    np.testing.assert_array_equal(top_k(scores, 300), np.arange(99_999, 99_699, -1))
    scores[-500:] = -np.inf
    np.testing.assert_array_equal(top_k(scores, 3), [99_499, 99_498, 99_497])


def test_bad_arguments() -> None:
    retriever = ExactRetriever(np.ones((5, 3), np.float32))
    with pytest.raises(RetrievalError):
        retriever.search(np.ones((1, 4), np.float32), 2)
    with pytest.raises(RetrievalError):
        retriever.search(np.ones((1, 3), np.float32), 0)
    with pytest.raises(RetrievalError):
        retriever.search(np.ones((2, 3), np.float32), 2, exclude=[np.array([1])])


# -- HNSW -------------------------------------------------------------------------------------


def test_hnsw_recall_against_exact(big: tuple[np.ndarray, np.ndarray], hnsw: HnswRetriever) -> None:
    items, users = big
    exact, _ = ExactRetriever(items).search(users, 100)
    found, scores = hnsw.search(users, 100)
    assert recall(exact, found) >= 0.95
    assert hnsw.kind == "hnsw" and hnsw.n_items == 20_000 and hnsw.dim == 32
    assert hnsw.params == {
        "m": 32,
        "ef_construction": 200,
        "ef_search": CandidateSettings().ann_ef_search,  # one default, from the settings
        "metric": "l2_reduction",
    }
    # Scores are exact inner products of the items returned, best first.
    expected = np.einsum("qkf,qf->qk", items[found], users)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_hnsw_exclusion_searches_deeper(
    big: tuple[np.ndarray, np.ndarray], hnsw: HnswRetriever
) -> None:
    items, users = big
    first, _ = hnsw.search(users[:20], 100)
    seen = [row[:80] for row in first]
    found, scores = hnsw.search(users[:20], 100, exclude=seen)
    assert (found >= 0).all() and np.isfinite(scores).all()
    for row in range(20):
        assert not np.isin(found[row], seen[row]).any()
    exact, _ = ExactRetriever(items).search(users[:20], 100, exclude=seen)
    # Ranks 81-180 of a depth-180 search (efSearch = depth): looser than the top-100 recall.
    assert recall(exact, found) >= 0.8


def test_hnsw_pads_small_catalogs() -> None:
    items, users = clustered(30, 8, 2)
    retriever = HnswRetriever.build(items)
    indices, scores = retriever.search(users, 40, exclude=[np.arange(5), None])
    assert (indices[0, :25] >= 0).all() and (indices[0, 25:] == -1).all()
    assert np.isnan(scores[0, 25:]).all()
    assert sorted(indices[1, :30]) == list(range(30))


def test_hnsw_plain_inner_product_variant() -> None:
    items, users = clustered(2_000, 16, 20)
    retriever = HnswRetriever.build(items, m=16, reduction=False)
    assert retriever.params["metric"] == "inner_product" and retriever.params["m"] == 16
    exact, _ = ExactRetriever(items).search(users, 10)
    found, _ = retriever.search(users, 10)
    assert recall(exact, found) >= 0.8


def test_hnsw_file_roundtrip(
    big: tuple[np.ndarray, np.ndarray], hnsw: HnswRetriever, tmp_path: Path
) -> None:
    users = big[1]
    loaded = HnswRetriever.load(hnsw.save(tmp_path / "index" / "hnsw.faiss"))
    for left, right in zip(hnsw.search(users, 50), loaded.search(users, 50), strict=True):
        np.testing.assert_array_equal(left, right)
    assert loaded.params == hnsw.params


# -- the index as an artifact -------------------------------------------------------------------


def test_artifact_roundtrip_and_checksum(
    big: tuple[np.ndarray, np.ndarray], hnsw: HnswRetriever, tmp_path: Path
) -> None:
    users = big[1]
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    version = "20250301T120000Z-abc123"
    assert load_index(artifacts, version) is None
    key = save_index(artifacts, version, hnsw)
    assert key == f"indexes/{version}/manifest.json"
    assert artifacts.list(f"indexes/{version}") == [
        f"indexes/{version}/{INDEX_NAME}",
        key,
    ]
    loaded = load_index(artifacts, version, item_count=20_000, dim=32)
    assert loaded is not None
    for left, right in zip(hnsw.search(users, 50), loaded.search(users, 50), strict=True):
        np.testing.assert_array_equal(left, right)

    with pytest.raises(IndexShapeError, match="model item_count"):
        load_index(artifacts, version, item_count=19_999)
    with pytest.raises(IndexShapeError, match="model dim"):
        load_index(artifacts, version, dim=64)

    data = bytearray(artifacts.get_bytes(f"indexes/{version}/{INDEX_NAME}"))
    data[len(data) // 2] ^= 0xFF
    artifacts.put_bytes(f"indexes/{version}/{INDEX_NAME}", bytes(data))
    with pytest.raises(IndexChecksumError, match="checksum mismatch") as caught:
        load_index(artifacts, version)
    assert isinstance(caught.value, ValueError)

    artifacts.delete(f"indexes/{version}/{INDEX_NAME}")
    with pytest.raises(IndexChecksumError, match="missing"):
        load_index(artifacts, version)


def test_index_without_manifest_does_not_exist(tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    items, _ = clustered(100, 8, 1)
    retriever = HnswRetriever.build(items)
    artifacts.put_bytes("indexes/v1/hnsw.faiss", retriever.to_bytes())  # a build that died
    assert load_index(artifacts, "v1") is None


# -- choosing ---------------------------------------------------------------------------------


def test_build_retriever_picks_by_threshold() -> None:
    items, _ = clustered(500, 8, 3)
    index = HnswRetriever.build(items)
    exact = build_retriever(items)
    assert isinstance(exact, ExactRetriever) and exact.kind == "exact"
    assert build_retriever(items, exact_threshold=500, index=index).kind == "exact"
    assert build_retriever(items, exact_threshold=100).kind == "exact"  # no index
    chosen = build_retriever(items, exact_threshold=100, index=index)
    assert chosen is index and isinstance(chosen, Retriever)
    # An index over another catalog (stale) is refused: exact scoring is slower, never wrong.
    stale = build_retriever(items[:400], exact_threshold=100, index=index)
    assert isinstance(stale, ExactRetriever) and stale.n_items == 400
