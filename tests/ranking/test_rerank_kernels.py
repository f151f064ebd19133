"""The greedy selection's numba kernel (``tastebud.ranking.rerank_kernels``) picks exactly
what the numpy loop picks, or says it cannot be sure: over generated candidates with MMR,
creator caps, category balance, items without vectors, exact ties and caps that relax."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tastebud.ranking import rerank
from tastebud.ranking.rerank import Selection, select


def numpy_loop(monkeypatch: pytest.MonkeyPatch, *args: Any, **options: Any) -> Selection:
    """``select`` with the kernel switched off: the loop it must agree with."""
    with monkeypatch.context() as patched:
        patched.setattr(rerank, "_greedy", lambda *_: None)
        return select(*args, **options)


def generated(rng: np.random.Generator, trial: int) -> tuple[np.ndarray, int, dict[str, Any]]:
    n = int(rng.integers(1, 400))
    vectors = rng.standard_normal((n, int(rng.choice([8, 64])))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if trial % 5 == 0:
        vectors[rng.random(n) < 0.3] = 0.0  # items without an embedding
    relevance = rng.random(n).astype(np.float32)
    if trial % 7 == 0:
        relevance = np.round(relevance, 2).astype(np.float32)  # exact ties
    options: dict[str, Any] = {"vectors": vectors, "diversity": [0.0, 0.3, 0.9][trial % 3]}
    if trial % 2:
        options.update(creators=rng.integers(-1, 4, n), creator_share=0.3)
    if trial % 3 == 1:
        options.update(categories=rng.integers(-1, 3, n), category_share=0.5)
    return relevance, int(rng.integers(1, 30)), options


def test_the_kernel_picks_what_the_numpy_loop_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    decided = 0
    for trial in range(600):
        relevance, k, options = generated(rng, trial)
        expected = numpy_loop(monkeypatch, relevance, k, **options)
        found = select(relevance, k, **options)
        assert np.array_equal(found.order, expected.order), trial
        assert found.relaxed == expected.relaxed, trial
        vectors = options["vectors"] if options["diversity"] > 0 else None
        caps = [
            (np.asarray(options[codes]), max(1, int(options[share] * min(k, len(relevance)))))
            for codes, share in (("creators", "creator_share"), ("categories", "category_share"))
            if codes in options
        ]
        diversity = options["diversity"]
        scaled = (1.0 - diversity) * relevance if vectors is not None else relevance
        fast = rerank._greedy(relevance, scaled, vectors, diversity, caps, min(k, len(relevance)))
        if fast is not None:
            decided += 1
            assert np.array_equal(fast.order, expected.order), trial
            assert fast.relaxed == expected.relaxed, trial
    assert decided > 500  # the kernel decides almost every selection itself


def test_an_exact_tie_under_mmr_is_left_to_the_numpy_loop() -> None:
    """Two items with the same vector and relevance tie in every gain: the kernel cannot
    know which one float32 BLAS would favour, so it gives up."""
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    relevance = np.array([0.9, 0.5, 0.5], dtype=np.float32)
    caps: list[tuple[np.ndarray, int]] = []
    assert rerank._greedy(relevance, 0.5 * relevance, vectors, 0.5, caps, 2) is None
    assert select(relevance, 2, vectors=vectors, diversity=0.5).order.tolist() == [0, 1]


def test_non_finite_vectors_are_left_to_the_numpy_loop() -> None:
    vectors = np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, 1.0]], dtype=np.float32)
    relevance = np.array([0.9, 0.5, 0.4], dtype=np.float32)
    assert rerank._greedy(relevance, 0.5 * relevance, vectors, 0.5, [], 2) is None
