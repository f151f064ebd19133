"""The numba kernels of ``tastebud.ranking.screen`` (imported only when a screen is built:
numba's import costs about a second).

Two passes, so that the dot products vectorise: ``approximate`` scores every item from its
int8 codes in a loop that does nothing else (``fastmath`` limited to reassociation and fused
multiply-adds lets the sum use SIMD lanes; the screen's error bound holds for any summation
order), then ``bounded`` runs the bounds, the sampled threshold and the collection over that
array. Fused into one loop, the sum did not vectorise and the screen executed more
instructions than the float32 product it replaces (docs/benchmarks.md, "On-demand ranking").

Compiled in each process at model load (``FactorScreen.build`` runs a checked search), not
cached on disk unless ``NUMBA_CACHE_DIR`` is set: two serving workers starting at once
would share numba's cache files beside this module (issue 15 saw such a race with
librosa's kernels). No GIL is held, so two
ranking threads of a worker screen at once.
"""

from __future__ import annotations

import os

import numba
import numpy as np

_FAST = {"reassoc", "contract"}
# On disk only where NUMBA_CACHE_DIR names a directory on purpose (one per process, or a
# benchmark under valgrind, where compiling takes minutes); by default each process compiles.
_CACHE = bool(os.environ.get("NUMBA_CACHE_DIR"))
SAMPLE_MARGIN = 1.5  # the sampled threshold aims at this many times n lower bounds above it


@numba.njit(nogil=True, cache=_CACHE, fastmath=_FAST)
def approximate(codes: np.ndarray, scale: np.ndarray, query: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = scale[i] * (codes[i] @ query)`` for every row, summed in float32."""
    rows, dim = codes.shape
    for i in range(rows):
        acc = np.float32(0.0)
        for j in range(dim):
            acc += np.float32(codes[i, j]) * query[j]
        out[i] = acc * scale[i]


@numba.njit(nogil=True, cache=_CACHE)
def bounded(
    approx: np.ndarray,
    rho: np.ndarray,
    kappa: np.ndarray,
    query_l2: float,
    query_l1: float,
    excluded: np.ndarray,
    sampled: np.ndarray,
    n: int,
) -> np.ndarray:
    """Indices of the items (``excluded`` left out) whose upper bound reaches the n-th
    largest lower bound: a superset of the exact top ``n``, in index order. Empty when a
    sampled threshold turned out too high (the caller then scores every item).

    The bound of item ``i`` is ``query_l2 * rho[i] + query_l1 * kappa[i]``. One pass over
    ``sampled`` (random rows: a stride could follow a pattern in the ids) guesses a
    threshold below the n-th lower bound; one pass over every item keeps those whose upper
    bound reaches it (every item whose lower bound does is among them), and the n-th lower
    bound among the kept ones is then exact."""
    rows = len(approx)
    skip = np.zeros(rows, dtype=np.bool_)
    for item in excluded:
        skip[item] = True
    sample = np.empty(len(sampled))
    taken = 0
    for i in sampled:
        if not skip[i]:
            sample[taken] = np.float64(approx[i]) - (query_l2 * rho[i] + query_l1 * kappa[i])
            taken += 1
    rank = min(taken, int(SAMPLE_MARGIN * n * len(sampled) / rows) + 2)
    if rank < 1:
        return np.empty(0, dtype=np.int64)
    guess = np.partition(sample[:taken], taken - rank)[taken - rank]
    found = np.empty(rows, dtype=np.int64)
    lows = np.empty(rows)
    highs = np.empty(rows)
    count = 0
    for i in range(rows):
        value = np.float64(approx[i])
        bound = query_l2 * rho[i] + query_l1 * kappa[i]
        if value + bound >= guess and not skip[i]:
            found[count] = i
            lows[count] = value - bound
            highs[count] = value + bound
            count += 1
    if count < n:
        return np.empty(0, dtype=np.int64)
    threshold = np.partition(lows[:count], count - n)[count - n]
    if threshold < guess:  # fewer than n lower bounds above the guess: it missed items
        return np.empty(0, dtype=np.int64)
    return found[:count][highs[:count] >= threshold]
