"""Slow, obviously-correct per-user metric definitions, for checking the vectorised ones."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence


def ranked(items: Sequence[int], k: int) -> list[int | None]:
    """The first k slots of a list, None where it has no item (padding or too short)."""
    slots: list[int | None] = [i if i >= 0 else None for i in items[:k]]
    return slots + [None] * (k - len(slots))


def precision(items: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(1 for i in ranked(items, k) if i in relevant) / k


def recall(items: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(1 for i in ranked(items, k) if i in relevant) / len(relevant)


def hit_rate(items: Sequence[int], relevant: set[int], k: int) -> float:
    return 1.0 if any(i in relevant for i in ranked(items, k)) else 0.0


def ndcg(items: Sequence[int], relevant: set[int], k: int) -> float:
    dcg = sum(
        1 / math.log2(rank + 1) for rank, i in enumerate(ranked(items, k), start=1) if i in relevant
    )
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def average_precision(items: Sequence[int], relevant: set[int], k: int) -> float:
    hits, total = 0, 0.0
    for rank, i in enumerate(ranked(items, k), start=1):
        if i in relevant:
            hits += 1
            total += hits / rank
    return total / min(len(relevant), k)


def reciprocal_rank(items: Sequence[int], relevant: set[int], k: int) -> float:
    for rank, i in enumerate(ranked(items, k), start=1):
        if i in relevant:
            return 1 / rank
    return 0.0


ACCURACY = {
    "ndcg": ndcg,
    "recall": recall,
    "precision": precision,
    "map": average_precision,
    "mrr": reciprocal_rank,
    "hitrate": hit_rate,
}


def shown(items: Sequence[int], k: int) -> list[int]:
    return [i for i in ranked(items, k) if i is not None]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def ild(items: Sequence[int], vectors: Sequence[Sequence[float]], k: int) -> float:
    pairs = list(itertools.combinations(shown(items, k), 2))
    if not pairs:
        return math.nan
    return sum(1 - cosine(vectors[a], vectors[b]) for a, b in pairs) / len(pairs)


def novelty(items: Sequence[int], popularity: Sequence[float], n_users: int, k: int) -> float:
    slots = shown(items, k)
    if not slots:
        return math.nan
    return sum(-math.log2(min(max(popularity[i], 1) / n_users, 1.0)) for i in slots) / len(slots)


def gini(lists: Sequence[Sequence[int]], n_items: int, k: int) -> float:
    """Mean absolute difference form: sum_ij |c_i - c_j| / (2 n^2 mean)."""
    counts = Counter(i for items in lists for i in shown(items, k))
    values = [counts.get(i, 0) for i in range(n_items)]
    mean = sum(values) / n_items
    if mean == 0:
        return math.nan
    return sum(abs(a - b) for a in values for b in values) / (2 * n_items**2 * mean)


def personalization(lists: Sequence[Sequence[int]], k: int) -> float:
    sets = [set(shown(items, k)) for items in lists]
    sets = [s for s in sets if s]
    pairs = list(itertools.combinations(sets, 2))
    if not pairs:
        return math.nan
    return 1 - sum(len(a & b) / math.sqrt(len(a) * len(b)) for a, b in pairs) / len(pairs)


def coverage(lists: Sequence[Sequence[int]], n_items: int, k: int) -> float:
    return len({i for items in lists for i in shown(items, k)}) / n_items
