"""Re-ranking: score normalisation, the recency boost, and one greedy selection that does
MMR diversity, creator caps and category balance together; and the rerankers, the
pipeline's components that configure that selection (``Mmr``, ``CreatorCap``,
``CategoryBalance``, each with its settings).

Why one loop: MMR already picks items one at a time, so a cap is a mask on what the next
pick may be. Re-ranking first and capping after would undo part of MMR's choices.
Similarity is computed lazily (the candidates against the item just picked, one matrix-vector
product per pick), never as a full candidates x candidates matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from tastebud.ranking.work import Work
from tastebud.ranking_config import RankingSettings


def minmax(values: np.ndarray) -> np.ndarray:
    """Scale the finite values to [0, 1]; NaN (a source that cannot score an item) becomes 0.
    When all finite values are equal they all become 1: none is worse than another."""
    values = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype=np.float32)
    if not finite.any():
        return out
    low = values[finite].min()
    span = values[finite].max() - low
    out[finite] = (values[finite] - low) / span if span > 0 else 1.0
    return out


def recency_boost(
    age_days: np.ndarray, weight: float, half_life_days: float, cap: float
) -> np.ndarray:
    """min(cap, weight * 2^(-age / half_life)): bounded, so an old favourite can still beat a
    new item. Unknown ages (NaN) get no boost; future dates count as age 0."""
    age = np.asarray(age_days, dtype=np.float64)
    boost = np.zeros(age.shape, dtype=np.float32)
    known = np.isfinite(age)
    # A tiny half-life (a request override) overflows age / half_life to inf: 2^-inf is 0,
    # the right boost, so numpy's overflow warning says nothing worth logging.
    with np.errstate(over="ignore"):
        decay = np.exp2(-np.maximum(age[known], 0) / half_life_days)
    boost[known] = np.minimum(cap, weight * decay)
    return boost


@dataclass(frozen=True)
class Selection:
    order: np.ndarray  # positions into the candidate arrays, best first
    relaxed: int  # picks made after every cap was full (too few candidates to honour them)


def select(
    relevance: np.ndarray,
    k: int,
    *,
    vectors: np.ndarray | None = None,
    diversity: float = 0.0,
    creators: np.ndarray | None = None,
    creator_share: float | None = None,
    categories: np.ndarray | None = None,
    category_share: float | None = None,
) -> Selection:
    """Greedy selection of ``k`` candidates.

    Each pick maximises ``(1 - diversity) * relevance - diversity * max_sim`` (MMR, with
    ``max_sim`` the highest cosine to an item already picked; ``vectors`` are unit rows, zero
    for items with no embedding). ``creators``/``categories`` are integer codes (-1: none);
    no code may hold more than ``max(1, floor(share * k))`` places while other candidates
    remain. When only capped candidates are left the cap is relaxed and counted, so a
    short catalog still fills the list. ``relevance`` is finite (the blend's scores are).
    """
    relevance = np.asarray(relevance, dtype=np.float32)
    n = len(relevance)
    k = min(k, n)
    order = np.empty(k, dtype=np.int64)
    use_mmr = diversity > 0 and vectors is not None and len(vectors) == n
    # The highest cosine to any pick so far; a negative one is kept (an item pointing away
    # from everything picked is the most novel), not floored at 0.
    max_sim = np.full(n, -np.inf, dtype=np.float32)
    scaled = (1.0 - diversity) * relevance if use_mmr else relevance
    caps = [
        (np.asarray(codes), max(1, int(share * k)))
        for codes, share in ((creators, creator_share), (categories, category_share))
        if codes is not None and share is not None
    ]
    fast = _greedy(relevance, scaled, vectors if use_mmr else None, diversity, caps, k)
    if fast is not None:
        return fast
    left = _Open(n, caps)
    gain = np.empty(n, dtype=np.float32)
    for step in range(k):
        penalty = left.penalty()
        if use_mmr and step:
            np.multiply(max_sim, diversity, out=gain)
            np.subtract(scaled, gain, out=gain)
            np.add(gain, penalty, out=gain)
        else:
            np.add(relevance, penalty, out=gain)
        pick = int(gain.argmax())  # the method: np.argmax's Python wrapper costs as much
        order[step] = pick
        left.take(pick)
        if use_mmr:
            assert vectors is not None
            np.maximum(max_sim, vectors @ vectors[pick], out=max_sim)
    return Selection(order, left.relaxed)


_kernels: Any = None
_NO_VECTORS = np.zeros((0, 1), dtype=np.float32)


def compiled_kernels() -> Any:
    """The selection's numba kernel, imported (and compiled, with a small selection) once
    per process; ``tastebud.ranking.lifecycle`` calls it at model load so that the first
    request does not pay numba's import and compilation (about 2 s)."""
    global _kernels
    if _kernels is None:
        from tastebud.ranking import rerank_kernels  # lazy: numba's import costs about a second

        relevance = np.array([0.5, 0.25, 0.75], dtype=np.float32)
        vectors = np.eye(3, 2, dtype=np.float32)
        codes = np.array([[0, -1, 0]], dtype=np.int64)
        for mmr in (True, False):
            rerank_kernels.greedy(relevance, relevance, vectors, 0.5, mmr, codes, codes[0], 2)
        _kernels = rerank_kernels
    return _kernels


def _greedy(
    relevance: np.ndarray,
    scaled: np.ndarray,
    vectors: np.ndarray | None,
    diversity: float,
    caps: list[tuple[np.ndarray, int]],
    k: int,
) -> Selection | None:
    """``select`` in one numba call (``tastebud.ranking.rerank_kernels``): the same picks,
    or None when a pick was too close to call exactly (the numpy loop then decides)."""
    if vectors is not None and (vectors.dtype != np.float32 or vectors.ndim != 2):
        return None
    kernels = compiled_kernels()
    n = len(relevance)
    codes = np.empty((len(caps), n), dtype=np.int64)
    for row, (values, _) in enumerate(caps):
        codes[row] = values
    limits = np.array([limit for _, limit in caps], dtype=np.int64)
    order, relaxed, exact = kernels.greedy(
        relevance,
        np.asarray(scaled, dtype=np.float32),
        _NO_VECTORS if vectors is None else np.ascontiguousarray(vectors),
        float(np.float32(diversity)),  # the value numpy multiplies float32 similarities by
        vectors is not None,
        codes,
        limits,
        k,
    )
    return Selection(order, int(relaxed)) if exact else None


class _Open:
    """Which candidates the next pick may be, as penalties added to the gain: -inf rules a
    candidate out, 0 leaves its gain exactly as it is (one add per pick, no masks rebuilt).
    ``closed``: picked or capped; ``taken``: picked (used once every open one is capped)."""

    def __init__(self, n: int, caps: list[tuple[np.ndarray, int]]) -> None:
        self.closed = np.zeros(n, dtype=np.float32)
        self.taken = np.zeros(n, dtype=np.float32)
        self.still_open = n  # candidates neither picked nor capped
        self.caps = [(codes, limit, {}) for codes, limit in caps]
        self.relaxed = 0

    def penalty(self) -> np.ndarray:
        if self.still_open:
            return self.closed
        self.relaxed += 1
        return self.taken

    def take(self, pick: int) -> None:
        if self.closed[pick] == 0:
            self.still_open -= 1
        self.closed[pick] = self.taken[pick] = -np.inf
        for codes, limit, counts in self.caps:
            code = int(codes[pick])
            if code < 0:
                continue
            counts[code] = counts.get(code, 0) + 1
            if counts[code] == limit:
                newly = (codes == code) & (self.closed == 0)
                self.still_open -= int(np.count_nonzero(newly))
                self.closed[newly] = -np.inf


def intra_list_diversity(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cos) of a list's unit vectors; 0 for < 2 items."""
    n = len(vectors)
    if n < 2:
        return 0.0
    similarity = vectors @ vectors.T
    upper = similarity[_upper_triangle(n)]
    return float(np.mean(1.0 - upper))


@lru_cache(maxsize=16)
def _upper_triangle(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n, k=1)``, built once per list length (it cost as much as the
    diversity itself)."""
    return np.triu_indices(n, k=1)


class Reranker(Protocol):
    """A component of the greedy selection: the ``select`` options it sets."""

    name: str

    def options(self, work: Work) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Mmr:
    """``[ranking.mmr]``: trade relevance for novelty against the items already picked."""

    diversity: float
    name: str = "mmr"

    def options(self, work: Work) -> dict[str, Any]:
        return {"vectors": work.vectors(), "diversity": self.diversity}


@dataclass(frozen=True)
class CreatorCap:
    """``[ranking.creator_cap]``: at most ``max_share`` of a list per creator."""

    max_share: float
    name: str = "creator_cap"

    def options(self, work: Work) -> dict[str, Any]:
        creators = work.snapshot.catalog.creators[work.positions]
        return {"creators": creators, "creator_share": self.max_share}


@dataclass(frozen=True)
class CategoryBalance:
    """``[ranking.category_balance]``: at most ``max_share`` of a list per primary category."""

    max_share: float
    name: str = "category_balance"

    def options(self, work: Work) -> dict[str, Any]:
        categories = work.snapshot.catalog.primary_category[work.positions]
        return {"categories": categories, "category_share": self.max_share}


def rerankers(settings: RankingSettings) -> Sequence[Reranker]:
    """The rerankers the settings enable."""
    chosen: list[Reranker] = []
    if settings.mmr.enabled:
        chosen.append(Mmr(settings.mmr.diversity))
    if settings.creator_cap.enabled:
        chosen.append(CreatorCap(settings.creator_cap.max_share))
    if settings.category_balance.enabled:
        chosen.append(CategoryBalance(settings.category_balance.max_share))
    return tuple(chosen)


def rerank(chosen: Sequence[Reranker], work: Work) -> None:
    """Pick the list: one greedy ``select`` with every reranker's options."""
    options: dict[str, Any] = {}
    for reranker in chosen:
        options.update(reranker.options(work))
    selection = select(work.relevance, work.request.k, **options)
    work.order, work.relaxed = selection.order, selection.relaxed
