"""CF candidate retrieval: the top-N items for user vectors by inner product.

Below ``EXACT_THRESHOLD`` items exact scoring is fast enough (one float32 matvec plus a
partial selection: ~0.5 ms on one thread for 50,000 x 64, most of it reading the factors),
so serving never depends on an index there. Above it an HNSW graph (faiss, inner products
through the MIPS-to-L2 reduction) trades recall for latency; ``benchmarks/bench_retrieval.py``
measures both.

Threads: serving handles one request per thread and runs several workers, so a search must
not fan out over cores (OpenBLAS and faiss' OpenMP default to all of them, which only adds
contention and tail latency under load). A serving worker calls ``limit_threads()`` once at
start-up rather than per request: a threadpoolctl context costs ~0.4 ms, more than the
search itself. Jobs that build indexes keep every core.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from threadpoolctl import threadpool_limits

from tastebud.observability import get_logger
from tastebud.ranking.screen import FactorScreen
from tastebud.ranking_config import CandidateSettings

if TYPE_CHECKING:
    import faiss

log = get_logger(__name__)

# The defaults of [ranking.candidates], one value each (serving and the index job pass the
# configured ones); the graph's build parameters are the index job's own.
EXACT_THRESHOLD = CandidateSettings().exact_threshold
EF_SEARCH = CandidateSettings().ann_ef_search
M = 32
EF_CONSTRUCTION = 200

BLOCK_BYTES = 64 * 1024 * 1024  # score matrix per block of a batched exact search
SAMPLE_MIN = 2048  # sampled scores used to guess a selection threshold


class RetrievalError(ValueError):
    """A retriever was asked something it cannot answer (bad shapes, bad arguments)."""


def limit_threads(threads: int = 1) -> Any:
    """Cap BLAS and faiss (OpenMP) threads for this process; call once per serving worker.
    Returns the threadpoolctl limiter (``.restore_original_limits()`` undoes the BLAS cap)."""
    # lazy: faiss loads on first use, not when the API app is imported
    import faiss

    faiss.omp_set_num_threads(threads)
    return threadpool_limits(limits=threads)


@runtime_checkable
class Retriever(Protocol):
    """Top-n items by inner product with a user vector."""

    kind: str  # "exact" | "hnsw"

    @property
    def n_items(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def search(
        self,
        user_vectors: np.ndarray,
        n: int,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n item indices and inner-product scores per row of user_vectors (q x f),
        best first; -1 / NaN pad. exclude[i] = item indices never to return for row i
        (seen items): search deeper so n items remain when possible."""
        ...


def _queries(user_vectors: np.ndarray, dim: int, n: int, exclude: Sequence | None) -> np.ndarray:
    """Validated float32 C-contiguous q x dim queries (a single vector becomes 1 x dim)."""
    if n < 1:
        raise RetrievalError("n must be at least 1")
    queries = np.asarray(user_vectors, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise RetrievalError(f"user vectors of shape {queries.shape} do not match dim {dim}")
    if exclude is not None and len(exclude) != len(queries):
        raise RetrievalError(f"{len(queries)} user vectors but {len(exclude)} exclude lists")
    return np.ascontiguousarray(queries)


def _excluded(exclude: Sequence[np.ndarray] | None, row: int, n_items: int) -> np.ndarray:
    """Row ``row``'s excluded indices that name an item (unknown items, -1, are ignored)."""
    if exclude is None or exclude[row] is None:
        return np.empty(0, dtype=np.int64)
    indices = np.asarray(exclude[row], dtype=np.int64).ravel()
    return indices[(indices >= 0) & (indices < n_items)]


def _padded(q: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((q, n), -1, dtype=np.int64), np.full((q, n), np.nan, dtype=np.float32)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (equal scores: lower index
    first, though which of several items tied at the cut is kept is unspecified).

    A threshold guessed from a strided sample keeps only ~2k candidates for argpartition;
    it is exact, because any threshold with at least k scores above it admits the top k.
    When the guess admits fewer, the whole array is partitioned instead."""
    size = len(scores)
    k = min(k, size)
    candidates: np.ndarray | None = None
    if size > 8 * max(k, SAMPLE_MIN // 8):
        step = max(1, size // max(SAMPLE_MIN, 8 * k))
        sample = scores[::step]
        rank = min(len(sample) - 1, 2 * k * len(sample) // size + 1)
        threshold = np.partition(sample, len(sample) - 1 - rank)[len(sample) - 1 - rank]
        above = np.flatnonzero(scores >= threshold)
        if len(above) >= k:
            candidates = above
    if candidates is None:
        candidates = np.arange(size)
    values = scores[candidates]
    if len(candidates) > k:
        part = np.argpartition(values, len(candidates) - k)[len(candidates) - k :]
        candidates, values = candidates[part], values[part]
    order = np.lexsort((candidates, -values))
    chosen = candidates[order]
    return chosen[np.isfinite(scores[chosen])]


class ExactRetriever:
    """Brute force: every item's score, then a partial selection. Exact by construction.

    With ``screen`` (``[ranking.candidates] exact_screen``, off by default), a single query
    over a catalog of at least ``screen.MIN_ITEMS`` items is answered through a
    ``FactorScreen``: the same items, in the same order, with the same scores, reading a
    quarter of the memory (``tastebud.ranking.screen``; not yet shown cheaper)."""

    kind = "exact"

    def __init__(self, item_factors: np.ndarray, *, screen: bool = False) -> None:
        factors = np.asarray(item_factors, dtype=np.float32)
        if factors.ndim != 2:
            raise RetrievalError(f"item factors must be 2-D, not {factors.shape}")
        self.item_factors = np.ascontiguousarray(factors)
        self.screen = FactorScreen.build(self.item_factors) if screen else None

    @property
    def n_items(self) -> int:
        return int(self.item_factors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.item_factors.shape[1])

    def search(
        self,
        user_vectors: np.ndarray,
        n: int,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = _queries(user_vectors, self.dim, n, exclude)
        indices, scores = _padded(len(queries), n)
        if self.n_items == 0:
            return indices, scores
        if len(queries) == 1 and self.screen is not None:
            found = self.screen.top(queries[0], n, _excluded(exclude, 0, self.n_items))
            if found is not None:
                indices[0, : len(found[0])], scores[0, : len(found[0])] = found
                return indices, scores
        block = max(1, BLOCK_BYTES // (4 * self.n_items))
        for start in range(0, len(queries), block):
            chunk = queries[start : start + block]
            one = len(chunk) == 1  # a matvec (gemv): the cheapest path for one query
            matrix = (self.item_factors @ chunk[0])[None, :] if one else chunk @ self.item_factors.T
            for offset, row_scores in enumerate(matrix):
                row = start + offset
                excluded = _excluded(exclude, row, self.n_items)
                if len(excluded):
                    row_scores[excluded] = -np.inf
                chosen = top_k(row_scores, n)
                indices[row, : len(chosen)] = chosen
                scores[row, : len(chosen)] = row_scores[chosen]
        return indices, scores


class HnswRetriever:
    """An HNSW graph over the item factors (faiss ``IndexHNSWFlat``).

    By default the graph is built with the standard MIPS-to-L2 reduction (Bachrach et al.
    2014): each item gets one extra coordinate ``sqrt(R^2 - |x|^2)`` (R the largest norm)
    and queries a 0, so L2 order equals inner-product order. HNSW's greedy search assumes a
    metric; on raw inner products (not a metric) recall@100 on clustered factors of uneven
    norms was ~0.77 at efSearch 128, against ~0.97 with the reduction. Returned scores are
    recomputed as exact inner products from the stored vectors. ``reduction=False`` builds
    a plain ``METRIC_INNER_PRODUCT`` graph instead.

    A search explores ``max(ef_search, depth)`` candidates (faiss would otherwise return at
    most ``ef_search`` results). Exclusion asks the graph for ``n + len(exclude)`` results
    (capped at the catalog) and filters; if approximate search still leaves fewer than
    ``n``, it searches twice as deep until the whole catalog has been asked for."""

    kind = "hnsw"

    def __init__(self, index: faiss.Index, ef_search: int = EF_SEARCH) -> None:
        # A downcast wrapper does not own the C++ object: keep the owner alive beside it.
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        self._owner = index
        hnsw = index if isinstance(index, faiss.IndexHNSWFlat) else faiss.downcast_index(index)
        if not isinstance(hnsw, faiss.IndexHNSWFlat):
            raise RetrievalError(f"expected an IndexHNSWFlat, got {type(hnsw).__name__}")
        if hnsw.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
            raise RetrievalError("the HNSW index must use the inner-product or L2 metric")
        self.index = hnsw
        self.reduction = hnsw.metric_type == faiss.METRIC_L2
        self.ef_search = ef_search
        storage = faiss.downcast_index(hnsw.storage)
        size = int(hnsw.ntotal) * int(hnsw.d)
        # Zero-copy view of the stored vectors (owned by the index) for exact rescoring.
        self._vectors = (
            faiss.rev_swig_ptr(storage.get_xb(), size).reshape(int(hnsw.ntotal), int(hnsw.d))
            if size
            else np.zeros((0, int(hnsw.d)), dtype=np.float32)
        )

    @classmethod
    def build(
        cls,
        item_factors: np.ndarray,
        m: int = M,
        ef_construction: int = EF_CONSTRUCTION,
        ef_search: int = EF_SEARCH,
        *,
        reduction: bool = True,
    ) -> HnswRetriever:
        """Build the graph (uses every core faiss is allowed)."""
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        factors = np.asarray(item_factors, dtype=np.float32)
        if factors.ndim != 2 or factors.shape[0] == 0:
            raise RetrievalError(f"cannot index item factors of shape {factors.shape}")
        if reduction:
            squared = np.einsum("ij,ij->i", factors, factors, dtype=np.float64)
            extra = np.sqrt(np.maximum(squared.max() - squared, 0.0)).astype(np.float32)
            vectors = np.ascontiguousarray(np.hstack([factors, extra[:, None]]))
            index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_L2)
        else:
            vectors = np.ascontiguousarray(factors)
            index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(vectors)
        return cls(index, ef_search)

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        """The factor dimension (the graph holds one more with the reduction)."""
        return int(self.index.d) - int(self.reduction)

    @property
    def m(self) -> int:
        """Neighbours per node above level 0 (level 0 keeps 2 * m)."""
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        levels = faiss.vector_to_array(self.index.hnsw.cum_nneighbor_per_level)
        return int(levels[2] - levels[1])

    @property
    def ef_search(self) -> int:
        return int(self.index.hnsw.efSearch)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if value < 1:
            raise RetrievalError("ef_search must be at least 1")
        self.index.hnsw.efSearch = int(value)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "ef_construction": int(self.index.hnsw.efConstruction),
            "ef_search": self.ef_search,
            "metric": "l2_reduction" if self.reduction else "inner_product",
        }

    def save(self, path: str | Path) -> Path:
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(path))
        return path

    @classmethod
    def load(cls, path: str | Path, ef_search: int = EF_SEARCH) -> HnswRetriever:
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        return cls(faiss.read_index(str(path)), ef_search)

    def to_bytes(self) -> bytes:
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, ef_search: int = EF_SEARCH) -> HnswRetriever:
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        return cls(faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)), ef_search)

    def search(
        self,
        user_vectors: np.ndarray,
        n: int,
        exclude: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        # lazy: faiss loads on first use, not when the API app is imported
        import faiss

        queries = _queries(user_vectors, self.dim, n, exclude)
        indices, scores = _padded(len(queries), n)
        total = self.n_items
        if total == 0:
            return indices, scores
        graph_queries = (
            np.hstack([queries, np.zeros((len(queries), 1), np.float32)])
            if self.reduction
            else queries
        )
        excluded = [_excluded(exclude, row, total) for row in range(len(queries))]
        pending = np.arange(len(queries))
        depth = min(total, n + max((len(e) for e in excluded), default=0))
        while len(pending):
            # faiss returns at most efSearch results: the beam must be at least as deep.
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.ef_search, depth)
            found_scores, found = self.index.search(graph_queries[pending], depth, params=params)
            short = []
            for position, row in enumerate(pending):
                keep = found[position] >= 0
                if len(excluded[row]):
                    keep &= ~np.isin(found[position], excluded[row])
                items = found[position][keep][:n]
                if self.reduction:
                    values = self._vectors[items, : self.dim] @ queries[row]
                    order = np.argsort(-values, kind="stable")
                    items, values = items[order], values[order]
                else:
                    values = found_scores[position][keep][:n]
                indices[row, : len(items)] = items
                scores[row, : len(items)] = values
                if len(items) < n and depth < total:
                    short.append(row)
            pending = np.asarray(short, dtype=np.int64)
            depth = min(total, depth * 2)
        return indices, scores


def build_retriever(
    item_factors: np.ndarray,
    exact_threshold: int = EXACT_THRESHOLD,
    index: HnswRetriever | None = None,
    *,
    screen: bool = False,
) -> Retriever:
    """Exact when len(item_factors) <= exact_threshold or no index is given, else the index.
    An index over a different catalog (a stale build) would return the wrong items: it is
    refused with a logged error and exact scoring serves instead (slower, never wrong)."""
    if len(item_factors) <= exact_threshold or index is None:
        return ExactRetriever(item_factors, screen=screen)
    factors = np.asarray(item_factors)
    if index.n_items != factors.shape[0] or index.dim != factors.shape[1]:
        log.error(
            "ann_index_mismatch",
            index_shape=[index.n_items, index.dim],
            model_shape=list(factors.shape),
        )
        return ExactRetriever(factors, screen=screen)
    return index
