"""The exact CF top-N at a quarter of the memory reads: a screen over an int8 copy of the
item factors, with a proven error bound, then only the items that may be in the top N
scored again exactly.

Why: exact CF retrieval scores every item with a float32 matrix-vector product (50,000 x 64
factors: 12.8 MB read per request, about 1 ms on one thread, most of a ranked request's
retrieval). The top N needs exact scores only near its cut.

How (docs/benchmarks.md, "On-demand ranking"):

1. Each item row ``x`` is stored as int8 codes ``c`` and one float32 scale ``s`` (its largest
   absolute value / 127), so ``s * c`` is ``x`` to within half a step per component. Per row
   the screen keeps ``rho`` >= ||s*c - x|| and ``kappa``, which covers float32 rounding of
   both the screen's sum and the exact product's (``gamma_d`` per term, doubled).
2. A query ``q`` gets ``approx = s * (c . q)`` for every item (a vectorised numba loop of
   its own) and the bound
   ``E = ||q||_2 * rho + ||q||_1 * kappa`` >= |approx - exact|, for any summation order.
3. ``T`` = the N-th largest ``approx - E`` among the items not excluded: N items score at
   least ``T`` exactly, so every item of the exact top N has ``approx + E >= T``. Only those
   (about 600 for N = 500 on the benchmark's factors) are scored again.
4. Again exactly means bit for bit as ``item_factors @ q`` scores them. OpenBLAS computes
   the rows of a product in groups of four; a row's bits do not depend on where it sits, so
   gathered rows padded to a multiple of four score as in the full product, except the last
   ``n % 4`` rows, which the full product computes apart (they are scored from a slice that
   ends as the full matrix does). ``FactorScreen.build`` checks this on the running BLAS
   and refuses the screen (the full product then serves) when it does not hold.

The top N is then the full product's, in its order (score, then index). Items tied exactly
at the N-th score may be chosen differently: ``retrieval.top_k`` leaves that unspecified.
"""

from __future__ import annotations

import numpy as np

from tastebud.observability import get_logger

log = get_logger(__name__)

MIN_ITEMS = 20_000  # smaller catalogs: the full product costs little more than the screen
_U = 2.0**-24  # float32 unit roundoff
_CHECK_QUERIES = 6
SAMPLE_ROWS = 4_096  # rows whose bounds guess a query's threshold
_kernels = None


def _compiled():
    """The numba kernels, imported on first use (they compile on their first call, at model
    load): importing numba takes about a second, which only a process that builds a screen
    should pay."""
    global _kernels
    if _kernels is None:
        from tastebud.ranking import screen_kernels  # lazy: numba's import costs about a second

        _kernels = screen_kernels
    return _kernels


class FactorScreen:
    """int8 codes of the item factors and the bounds that make the screen exact."""

    def __init__(self, item_factors: np.ndarray) -> None:
        factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        n, dim = factors.shape
        self.factors = factors
        self.main = n - n % 4  # rows the full product computes in groups of four
        wide = factors.astype(np.float64)
        largest = np.abs(wide).max(axis=1)
        self.scale = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
        scale = self.scale.astype(np.float64)[:, None]
        self.codes = np.clip(np.rint(wide / scale), -127, 127).astype(np.int8)
        decoded = self.codes.astype(np.float64) * scale
        self.rho = np.linalg.norm(decoded - wide, axis=1) * (1.0 + 1e-9)
        gamma = dim * _U / (1.0 - dim * _U)
        magnitude = np.maximum(largest, 127.0 * scale[:, 0])
        # Rounding: the screen's sum and scaling, and the exact product's own sum (x2 spare).
        self.kappa = 2.0 * (3.0 * gamma + 2.0 * _U) * magnitude
        # Rows whose bounds guess the threshold: random, as ids may follow a pattern.
        picked = np.random.default_rng(0).choice(n, size=min(n, SAMPLE_ROWS), replace=False)
        self.sampled = np.sort(picked)

    @classmethod
    def build(cls, item_factors: np.ndarray) -> FactorScreen | None:
        """A checked screen over ``item_factors``, or None (too small, non-finite factors,
        or a BLAS whose gathered rows do not score as in the full product)."""
        factors = np.asarray(item_factors)
        if factors.ndim != 2 or len(factors) < MIN_ITEMS or factors.dtype != np.float32:
            return None
        if not np.isfinite(factors).all():
            return None
        screen = cls(factors)
        problem = screen.check()
        if problem is not None:
            log.warning("exact_screen_refused", reason=problem, items=len(factors))
            return None
        return screen

    def check(self, seed: int = 0) -> str | None:
        """Why the screen would not return the full product's top N here (None: it does):
        gathered rows against the full product, bit for bit, then whole searches."""
        rng = np.random.default_rng(seed)
        n, dim = self.factors.shape
        spread = self.factors.std(axis=0) * np.sqrt(dim)
        for attempt in range(_CHECK_QUERIES):
            query = (rng.standard_normal(dim) * spread).astype(np.float32)
            if attempt % 2:
                query = self.factors[int(rng.integers(n))] * np.float32(10.0)
            full = self.factors @ query
            rows = rng.choice(n, size=int(rng.integers(300, 3_000)), replace=False)
            if not np.array_equal(self.exact(query, rows), full[rows]):
                return "gathered rows score differently from the full product"
            limit = int(rng.integers(50, 700))
            excluded = rng.choice(n, size=int(rng.integers(0, 200)), replace=False)
            full[excluded] = -np.inf
            expected = np.lexsort((np.arange(n), -full))[:limit]  # score, then index
            found = self.top(query, limit, excluded)
            if found is None or not np.array_equal(found[0], expected):
                return "a screened top N differs from the full product's"
        return None

    def exact(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``(item_factors @ query)[rows]``, bit for bit, without the full product."""
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.empty(len(rows), dtype=np.float32)
        inner = rows < self.main
        gathered = rows[inner]
        block = np.zeros((-(-len(gathered) // 4) * 4, self.factors.shape[1]), np.float32)
        np.take(self.factors, gathered, axis=0, out=block[: len(gathered)])
        scores[inner] = (block @ query)[: len(gathered)]
        if not inner.all():
            start = max(0, self.main - 4)
            tail = self.factors[start:] @ query
            scores[~inner] = tail[rows[~inner] - start]
        return scores

    def top(
        self, query: np.ndarray, n: int, excluded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The full product's top ``n`` (indices best first, their scores) with ``excluded``
        left out; None when fewer than ``n`` items remain or the query is not finite (the
        caller then scores every item)."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        total = len(self.factors)
        if n < 1 or not np.isfinite(query).all() or total - len(excluded) < n:
            return None
        wide = query.astype(np.float64)
        kernels = _compiled()
        approx = np.empty(total, dtype=np.float32)
        kernels.approximate(self.codes, self.scale, query, approx)
        candidates = kernels.bounded(
            approx,
            self.rho,
            self.kappa,
            float(np.sqrt(wide @ wide)),
            float(np.abs(wide).sum()),
            np.asarray(excluded, dtype=np.int64),
            self.sampled,
            n,
        )
        if len(candidates) < n:  # duplicates in ``excluded``: fewer items remain than thought
            return None
        scores = self.exact(query, candidates)
        order = np.lexsort((candidates, -scores))[:n]
        return candidates[order], scores[order]
