"""Content similarity for ranking (neighbours, content candidates, MMR's pairwise matrix)
and the content-to-CF ridge mapping that scores cold items for warm users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tastebud.content.cold_items import ColdItemScorer, ContentToCF
from tastebud.content.similarity import ContentSimilarity
from tastebud.data.interactions import from_table
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.models.factors import ALSRecommender


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def index() -> ContentSimilarity:
    vectors = unit(np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1.0]]))
    vectors = np.vstack([vectors, np.zeros((1, 3), np.float32)])  # "f": not embedded
    return ContentSimilarity(list("abcdef"), vectors)


def test_similar_excludes_self_and_pads(index: ContentSimilarity) -> None:
    ids, scores = index.similar(["a", "c", "zzz", "f"], k=2)
    assert ids[0, 0] == "b"
    assert ids[1, 0] == "d"
    assert scores[0, 0] == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-5)
    assert ids[2].tolist() == [None, None] and np.isnan(scores[2]).all()
    assert ids[3].tolist() == [None, None]
    wide_ids, _ = index.similar(["a"], k=10)
    found = [i for i in wide_ids[0] if i]
    assert found[0] == "b" and sorted(found) == ["b", "c", "d", "e"]  # never "a" or "f"
    assert len(index) == 5


def test_candidates_and_pairwise(index: ContentSimilarity) -> None:
    ids, _ = index.candidates(["a", "b"], k=2, exclude=["c"])
    assert ids.tolist() == ["d", "e"]  # d leans towards b; e is orthogonal
    assert "a" not in ids.tolist() and "c" not in ids.tolist()
    none_ids, _ = index.candidates(["zzz"], k=3)
    assert none_ids.tolist() == [None, None, None]
    matrix = index.pairwise(["a", "b", "zzz"])
    assert matrix.shape == (3, 3)
    assert np.allclose(np.diag(matrix), 1.0)
    assert matrix[0, 1] > 0.9 and matrix[0, 2] == 0 and matrix[2, 1] == 0


def test_ridge_recovers_a_linear_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    content = rng.normal(size=(500, 16))
    true = rng.normal(size=(16, 4))
    factors = content @ true + 0.5 + rng.normal(scale=0.01, size=(500, 4))
    mapping = ContentToCF().fit(content[:400], factors[:400])
    predicted = mapping.transform(content[400:])
    assert np.abs(predicted - factors[400:]).max() < 0.1
    mapping.save(tmp_path / "map.npz")
    restored = ContentToCF.load(tmp_path / "map.npz")
    assert np.allclose(restored.transform(content[400:]), predicted)
    with pytest.raises(ValueError):
        ContentToCF().fit(content[:1], factors[:1])


def test_cold_items_scored_for_warm_users() -> None:
    # Two planted tastes: users 0-29 play "x" items, users 30-59 play "y" items. Content
    # vectors say which taste an item belongs to. Cold items (never played) must score
    # higher for the users of their own taste.
    rng = np.random.default_rng(1)
    users, items = [], []
    for user in range(60):
        side = "x" if user < 30 else "y"
        for item in rng.choice(20, size=8, replace=False):
            users.append(f"u{user}")
            items.append(f"{side}{item}")
    table = pa.table(
        {
            "user_id": users,
            "item_id": items,
            "event_type": ["play"] * len(users),
            "value": pa.nulls(len(users), pa.float64()),
            "weight": pa.nulls(len(users), pa.float64()),
        }
    )
    matrix = build_matrix(from_table(table, "planted"), MatrixOptions())
    model = ALSRecommender(factors=8, iterations=10, use_gpu=False).fit(matrix)
    ids = [f"{side}{i}" for side in "xy" for i in range(25)]  # x20-x24, y20-y24 are cold
    taste = np.array([[1.0, 0.0] if name[0] == "x" else [0.0, 1.0] for name in ids])
    vectors = taste + rng.normal(scale=0.05, size=(50, 2))
    content = ContentSimilarity(ids, unit(np.hstack([vectors, np.zeros((50, 2))])))
    scorer = ColdItemScorer(model, content).fit()
    cold = [f"x{i}" for i in range(20, 25)] + [f"y{i}" for i in range(20, 25)]
    scores = scorer.score(["u0", "u45", "stranger"], cold)
    assert scores[0, :5].mean() > scores[0, 5:].mean()
    assert scores[1, 5:].mean() > scores[1, :5].mean()
    assert np.isnan(scores[2]).all()
    warm = scorer.item_factors(["x3"])
    assert np.array_equal(warm[0], model.item_factors_[model.items_.index(["x3"])[0]])
    assert not scorer.item_factors(["nowhere"]).any()
