"""The assembler: per-block standardization, block weights, a dimension that never changes
with the catalog, unit-length output, and a saved fit that transforms identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.content.assembler import EMBEDDING_DIM, Assembler


def blocks(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = rng.normal(100, 30, (n, 8))
    audio[::3] = np.nan  # a third of the items have no audio
    return {
        "audio": audio,
        "categories": rng.integers(0, 2, (n, 5)).astype(float),
        "text": rng.normal(0, 1e-3, (n, 30)),
    }


@pytest.mark.parametrize("n", [3, 50, 400])
def test_dimension_is_stable_and_rows_unit_length(n: int) -> None:
    data = blocks(n)
    vectors = Assembler().fit(data).transform(data)
    assert vectors.shape == (n, EMBEDDING_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_fewer_features_than_dim_are_zero_padded() -> None:
    data = blocks(400)
    assembler = Assembler(dim=128).fit(data)
    assert assembler.explained_dims == 43  # 8 + 5 + 30 columns
    assert np.all(assembler.transform(data)[:, 43:] == 0)


def test_scale_does_not_decide_and_weights_do() -> None:
    # Audio in the hundreds and text in the thousandths contribute alike once standardized.
    data = blocks(400)
    assembler = Assembler(weights={"audio": 1.0, "categories": 1.0, "text": 1.0}).fit(data)
    joined = assembler._join(data)
    audio_var = joined[:, :8].var(axis=0).sum()
    text_var = joined[:, 13:].var(axis=0).sum()
    assert audio_var == pytest.approx(text_var, rel=0.5)
    heavy = Assembler(weights={"audio": 3.0, "categories": 1.0, "text": 1.0}).fit(data)
    assert heavy._join(data)[:, :8].var(axis=0).sum() == pytest.approx(9 * audio_var, rel=0.01)


def test_missing_values_sit_at_the_block_mean() -> None:
    data = blocks(100)
    assembler = Assembler().fit(data)
    joined = assembler._join(data)
    assert np.all(joined[::3, :8] == 0)
    assert np.isfinite(joined).all()


def test_constant_columns_and_empty_blocks_are_harmless() -> None:
    data = blocks(60)
    data["audio"][:] = np.nan
    data["categories"][:] = 1.0
    vectors = Assembler().fit(data).transform(data)
    assert np.isfinite(vectors).all()


def test_saved_fit_transforms_identically(tmp_path: Path) -> None:
    data = blocks(200)
    assembler = Assembler(dim=32).fit(data)
    assembler.save(tmp_path)
    restored = Assembler.load(tmp_path)
    fresh = blocks(20, seed=5)
    assert np.array_equal(restored.transform(fresh), assembler.transform(fresh))


def test_fit_is_deterministic() -> None:
    data = blocks(300)
    first = Assembler().fit(data).transform(data)
    second = Assembler().fit(data).transform(data)
    assert np.array_equal(first, second)
