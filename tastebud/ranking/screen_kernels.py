"""The numba kernel of ``tastebud.ranking.screen`` (imported only when a screen is built:
numba's import costs about a second).

Compiled once per machine (``cache=True`` keeps the machine code beside this file); no GIL
is held, so two ranking threads of a worker screen at once. ``fastmath`` is limited to
reassociation and fused multiply-adds, which let the sum vectorise: the screen's error bound
holds for any summation order.
"""

from __future__ import annotations

import numba
import numpy as np

_FAST = {"reassoc", "contract"}
SAMPLE_MARGIN = 1.5  # the sampled threshold aims at this many times n lower bounds above it


@numba.njit(nogil=True, cache=True, fastmath=_FAST, inline="always")
def _approximate(codes: np.ndarray, scale: np.ndarray, query: np.ndarray, row: int) -> float:
    """``scale * (codes[row] @ query)``, summed in float32."""
    acc = np.float32(0.0)
    for j in range(codes.shape[1]):
        acc += np.float32(codes[row, j]) * query[j]
    return np.float64(acc * scale[row])


@numba.njit(nogil=True, cache=True, fastmath=_FAST)
def screen(
    codes: np.ndarray,
    scale: np.ndarray,
    rho: np.ndarray,
    kappa: np.ndarray,
    query: np.ndarray,
    query_l2: float,
    query_l1: float,
    excluded: np.ndarray,
    sampled: np.ndarray,
    n: int,
) -> np.ndarray:
    """Indices of the items (``excluded`` left out) whose upper bound reaches the n-th
    largest lower bound: a superset of the exact top ``n``, in index order. Empty when a
    sampled threshold turned out too high (the caller then scores every item).

    One pass over ``sampled`` (random rows: a stride could follow a pattern in the ids)
    guesses a threshold below the n-th lower bound; one pass
    over every item keeps those whose upper bound reaches it (every item whose lower bound
    does is among them), and the n-th lower bound among the kept ones is then exact."""
    rows = codes.shape[0]
    skip = np.zeros(rows, dtype=np.bool_)
    for item in excluded:
        skip[item] = True
    sample = np.empty(len(sampled))
    taken = 0
    for i in sampled:
        if not skip[i]:
            sample[taken] = _approximate(codes, scale, query, i) - (
                query_l2 * rho[i] + query_l1 * kappa[i]
            )
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
        if skip[i]:
            continue
        approx = _approximate(codes, scale, query, i)
        bound = query_l2 * rho[i] + query_l1 * kappa[i]
        if approx + bound >= guess:
            found[count] = i
            lows[count] = approx - bound
            highs[count] = approx + bound
            count += 1
    if count < n:
        return np.empty(0, dtype=np.int64)
    threshold = np.partition(lows[:count], count - n)[count - n]
    if threshold < guess:  # fewer than n lower bounds above the guess: it missed items
        return np.empty(0, dtype=np.int64)
    return found[:count][highs[:count] >= threshold]
