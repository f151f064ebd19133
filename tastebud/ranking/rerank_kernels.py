"""The numba kernel of the greedy selection (``tastebud.ranking.rerank.select``): the 20
picks of a list in one call instead of about eight numpy calls per pick (imported on the
first selection, or at model load by ``tastebud.ranking.lifecycle``: numba's import costs
about a second).

Exact by proof, not by hope. Caps and plain relevance compare the very float32 values the
numpy loop compares, so those picks are the same. MMR's similarities are computed here in
float64, while the numpy loop takes them from a float32 BLAS product whose summation order
is the BLAS's own: the two can differ by ``gamma_dim * |a| |b|`` (any order of a float32 sum
of ``dim`` terms stays within it) plus the numpy loop's roundings of the gain. A pick is
kept only when the best gain leads the next by more than twice that bound, so the numpy loop
would have picked the same item; otherwise the kernel gives up (``exact`` False) and the
caller runs the numpy loop (a few requests in a hundred, at exact or near ties).

Compiled in each process, not cached on disk unless ``NUMBA_CACHE_DIR`` is set (two
workers starting at once would share numba's cache files); no GIL is held.
"""

from __future__ import annotations

import os

import numba
import numpy as np

_FAST = {"reassoc", "contract"}
# On disk only where NUMBA_CACHE_DIR names a directory on purpose (one per process, or a
# benchmark under valgrind, where compiling takes minutes); by default each process compiles.
_CACHE = bool(os.environ.get("NUMBA_CACHE_DIR"))
_U = 2.0**-24  # float32 unit roundoff


@numba.njit(nogil=True, cache=_CACHE, fastmath=_FAST)
def _similarities(vectors: np.ndarray, pick: int, out: np.ndarray) -> None:
    """``out = vectors @ vectors[pick]`` in float64 (error far below the float32 bound)."""
    rows, dim = vectors.shape
    for i in range(rows):
        acc = 0.0
        for j in range(dim):
            acc += np.float64(vectors[i, j]) * np.float64(vectors[pick, j])
        out[i] = acc


@numba.njit(nogil=True, cache=_CACHE)
def _margin(vectors: np.ndarray, scaled: np.ndarray, diversity: float) -> float:
    """Twice the largest difference between a gain as computed here and as the numpy loop
    computes it (float32 BLAS similarities, float32 gains)."""
    rows, dim = vectors.shape
    top = 0.0
    for i in range(rows):
        norm = 0.0
        for j in range(dim):
            norm += np.float64(vectors[i, j]) ** 2
        top = max(top, norm)
    biggest = 0.0
    for i in range(rows):
        biggest = max(biggest, abs(np.float64(scaled[i])))
    gamma = dim * _U / (1.0 - dim * _U)
    top = top * (1.0 + 4.0 * _U)  # the norms' own rounding
    similarity = gamma * top + _U * top * (1.0 + gamma)  # BLAS sum, then stored as float32
    largest = top + similarity  # |max_sim| as the numpy loop holds it
    gain = diversity * similarity + 3.0 * _U * diversity * largest + _U * (biggest + largest)
    return 2.0 * gain + 1e-12


@numba.njit(nogil=True, cache=_CACHE)
def _best_two(
    relevance: np.ndarray,
    scaled: np.ndarray,
    max_sim: np.ndarray,
    diversity: float,
    use_gain: bool,
    skip: np.ndarray,
) -> tuple[int, float, float]:
    """(index, value) of the best open item and the runner-up's value: by MMR gain once a
    pick has been made, else by relevance (as float64, as the numpy loop compares)."""
    best, best_gain, second = -1, -np.inf, -np.inf
    for i in range(len(relevance)):
        if skip[i]:
            continue
        if use_gain:
            gain = np.float64(scaled[i]) - diversity * max_sim[i]
        else:
            gain = np.float64(relevance[i])
        if gain > best_gain:
            second, best_gain, best = best_gain, gain, i
        elif gain > second:
            second = gain
    return best, best_gain, second


@numba.njit(nogil=True, cache=_CACHE)
def _count_caps(
    codes: np.ndarray,
    limits: np.ndarray,
    picked: int,
    seen_codes: np.ndarray,
    counts: np.ndarray,
    distinct: np.ndarray,
    closed: np.ndarray,
) -> int:
    """Count ``picked`` under every cap; close the items of each code that reaches its
    limit, and return how many open items that closed."""
    newly_closed = 0
    for c in range(codes.shape[0]):
        code = codes[c, picked]
        if code < 0:
            continue
        slot = 0
        while slot < distinct[c] and seen_codes[c, slot] != code:
            slot += 1
        if slot == distinct[c]:
            seen_codes[c, slot] = code
            distinct[c] += 1
        counts[c, slot] += 1
        if counts[c, slot] == limits[c]:
            for i in range(codes.shape[1]):
                if codes[c, i] == code and not closed[i]:
                    closed[i] = True
                    newly_closed += 1
    return newly_closed


@numba.njit(nogil=True, cache=_CACHE)
def greedy(
    relevance: np.ndarray,
    scaled: np.ndarray,
    vectors: np.ndarray,
    diversity: float,
    use_mmr: bool,
    codes: np.ndarray,
    limits: np.ndarray,
    k: int,
) -> tuple[np.ndarray, int, bool]:
    """(order, relaxed, exact): ``select``'s picks, or ``exact`` False when a pick was too
    close to call. ``codes``: one row of cap codes per cap (-1: none), ``limits`` its
    places per code; ``diversity`` is the float32 value the numpy loop multiplies by."""
    n = len(relevance)
    caps = codes.shape[0]
    order = np.empty(k, dtype=np.int64)
    closed = np.zeros(n, dtype=np.bool_)
    taken = np.zeros(n, dtype=np.bool_)
    seen_codes = np.full((caps, k), -1, dtype=np.int64)
    counts = np.zeros((caps, k), dtype=np.int64)
    distinct = np.zeros(caps, dtype=np.int64)
    still_open, relaxed = n, 0
    max_sim = np.full(n, -np.inf)
    sims = np.empty(n)
    for i in range(n):
        if not np.isfinite(relevance[i]):  # the numpy loop's argmax would see NaN first
            return order, relaxed, False
    margin = _margin(vectors, scaled, diversity) if use_mmr else 0.0
    for step in range(k):
        relax = still_open == 0
        relaxed += relax
        skip = taken if relax else closed
        best, best_gain, second = _best_two(
            relevance, scaled, max_sim, diversity, use_mmr and step > 0, skip
        )
        if use_mmr and step and best_gain - second <= margin:
            return order, relaxed, False
        order[step] = best
        still_open -= not closed[best]
        closed[best] = taken[best] = True
        still_open -= _count_caps(codes, limits, best, seen_codes, counts, distinct, closed)
        if use_mmr:
            _similarities(vectors, best, sims)
            for i in range(n):
                if not np.isfinite(sims[i]):  # vectors not finite: no bound holds
                    return order, relaxed, False
                max_sim[i] = max(max_sim[i], sims[i])
    return order, relaxed, True
