"""SGD epochs for biased MF and SVD++ (Koren 2008), compiled with numba.

Written by hand because no installed library fits explicit-rating MF: implicit and the
neural models learn from implicit feedback, and scikit-surprise (Cython) is neither a
dependency nor always installable. A rating-by-rating SGD loop is what numba is for; numpy
alone would be ~100x slower. Imported lazily by ``models/rating/mf.py`` so that loading a
rating model to serve needs numpy only.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def biased_mf_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    order: np.ndarray,
    mu: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    lr: float,
    lr_bias: float,
    reg: float,
    reg_bias: float,
) -> float:
    """One pass over the ratings in ``order``; returns the summed squared error seen."""
    loss = 0.0
    n_factors = user_factors.shape[1]
    for position in range(order.shape[0]):
        index = order[position]
        u = users[index]
        i = items[index]
        prediction = mu + user_bias[u] + item_bias[i]
        for f in range(n_factors):
            prediction += user_factors[u, f] * item_factors[i, f]
        error = ratings[index] - prediction
        loss += error * error
        user_bias[u] += lr_bias * (error - reg_bias * user_bias[u])
        item_bias[i] += lr_bias * (error - reg_bias * item_bias[i])
        for f in range(n_factors):
            p = user_factors[u, f]
            q = item_factors[i, f]
            user_factors[u, f] += lr * (error * q - reg * p)
            item_factors[i, f] += lr * (error * p - reg * q)
    return loss


@numba.njit(cache=True, fastmath=False)
def svdpp_epoch(
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    user_order: np.ndarray,
    seed: int,
    mu: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    implicit_factors: np.ndarray,
    lr: float,
    lr_bias: float,
    reg: float,
    reg_bias: float,
) -> float:
    """One SVD++ pass, user by user (ratings grouped by user, CSR ``indptr``): the implicit
    part |N(u)|^-1/2 sum y_j is computed once per user and its gradient applied to the y_j
    after the user's ratings, the usual speed-up over surprise's per-rating recomputation."""
    np.random.seed(seed)
    loss = 0.0
    n_factors = user_factors.shape[1]
    implicit = np.zeros(n_factors)
    gradient = np.zeros(n_factors)
    for position in range(user_order.shape[0]):
        u = user_order[position]
        start = indptr[u]
        end = indptr[u + 1]
        if end == start:
            continue
        norm = 1.0 / np.sqrt(end - start)
        implicit[:] = 0.0
        for j in range(start, end):
            implicit += implicit_factors[items[j]]
        implicit *= norm
        gradient[:] = 0.0
        for j in np.random.permutation(np.arange(start, end)):
            i = items[j]
            prediction = mu + user_bias[u] + item_bias[i]
            for f in range(n_factors):
                prediction += (user_factors[u, f] + implicit[f]) * item_factors[i, f]
            error = ratings[j] - prediction
            loss += error * error
            user_bias[u] += lr_bias * (error - reg_bias * user_bias[u])
            item_bias[i] += lr_bias * (error - reg_bias * item_bias[i])
            for f in range(n_factors):
                p = user_factors[u, f]
                q = item_factors[i, f]
                user_factors[u, f] += lr * (error * q - reg * p)
                item_factors[i, f] += lr * (error * (p + implicit[f]) - reg * q)
                gradient[f] += error * q
        for j in range(start, end):
            y = items[j]
            for f in range(n_factors):
                implicit_factors[y, f] += lr * (gradient[f] * norm - reg * implicit_factors[y, f])
    return loss


@numba.njit(cache=True)
def knn_terms(
    rows: np.ndarray,
    cols: np.ndarray,
    user_indptr: np.ndarray,
    user_items: np.ndarray,
    user_residuals: np.ndarray,
    neighbour_indptr: np.ndarray,
    neighbour_items: np.ndarray,
    neighbour_similarity: np.ndarray,
    k: int,
) -> np.ndarray:
    """For each (user, item) pair: sum s_ij z_uj / sum |s_ij| over the k most similar
    neighbours j of the item that the user rated (z: residuals, user rows sorted)."""
    out = np.zeros(rows.shape[0])
    for position in range(rows.shape[0]):
        u = rows[position]
        i = cols[position]
        start, end = user_indptr[u], user_indptr[u + 1]
        found_s = np.empty(neighbour_indptr[i + 1] - neighbour_indptr[i])
        found_z = np.empty_like(found_s)
        count = 0
        for n in range(neighbour_indptr[i], neighbour_indptr[i + 1]):
            j = neighbour_items[n]
            at = start + np.searchsorted(user_items[start:end], j)
            if at < end and user_items[at] == j:
                found_s[count] = neighbour_similarity[n]
                found_z[count] = user_residuals[at]
                count += 1
        if count == 0:
            continue
        order = np.argsort(-found_s[:count])[:k]
        weight = 0.0
        total = 0.0
        for m in order:
            total += found_s[m] * found_z[m]
            weight += abs(found_s[m])
        if weight > 0:
            out[position] = total / weight
    return out
