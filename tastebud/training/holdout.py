"""Judging a fitted model on held-out interactions: who liked what, and how well it ranked.

Used by AutoML (on a validation split carved from the training data) and by the
``evaluate`` command (on a test split). What counts as relevant in held-out data:
explicit ratings at or above ``liked_rating`` of the scale, and any other row whose own
weight, or else its type's weight, is positive (plays, likes, purchases...). Plain pairs and
counts (no rating, no event type) are therefore relevant, as a user would expect: an
interaction is a positive signal unless its type or rating says otherwise. Items unknown at
training time cannot be ranked, so they are dropped (and counted by the relevance builder)
rather than scored as misses; that is the standard full-ranking protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from tastebud.config import EventTypeSpec, default_event_types
from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.data.matrix import InteractionMatrix
from tastebud.evaluation import evaluate_rankings, make_splitter, relevance_matrix, time_status
from tastebud.models.base import Recommender

DEFAULT_LIKED_RATING = 0.7
ACCURACY_NAMES = ("ndcg", "recall", "precision", "map", "mrr", "hitrate")


def positive_rows(
    table: pa.Table,
    event_types: dict[str, EventTypeSpec] | None = None,
    *,
    liked_rating: float = DEFAULT_LIKED_RATING,
    min_rating: float | None = None,
) -> pa.Table:
    """Rows that show a user liked an item. ``min_rating`` fixes the rating threshold
    (e.g. 4 stars, as benchmarks define it); otherwise ``liked_rating`` x the scale max."""
    event_types = event_types or default_event_types()
    rating_types = [name for name, spec in event_types.items() if spec.value == "rating"]
    positive_types = [
        name for name, spec in event_types.items() if spec.weight > 0 and spec.value != "rating"
    ]
    values = table.column("value")
    is_rating = pc.and_(
        pc.is_in(table.column("event_type"), pa.array(rating_types)), pc.is_valid(values)
    )
    if min_rating is None:
        rated = pc.filter(values, is_rating)
        scale = pc.max(rated).as_py() if len(rated) else None
        threshold = liked_rating * scale if scale else 0.0
    else:
        threshold = min_rating
    # Null-safe throughout: a row without a rating (plain pairs, play counts) must not turn
    # "liked or positive" into null, which the filter would read as "not relevant".
    liked = pc.fill_null(pc.and_(is_rating, pc.greater_equal(values, threshold)), False)
    explicit_weight = table.column("weight")
    other = pc.and_(
        pc.invert(is_rating),
        pc.if_else(
            pc.is_valid(explicit_weight),
            pc.greater(explicit_weight, 0),
            pc.is_in(table.column("event_type"), pa.array(positive_types)),
        ),
    )
    return table.filter(pc.or_(liked, pc.fill_null(other, False)))


@dataclass
class Holdout:
    """Relevance of held-out rows for the users a training matrix knows."""

    train: sp.csr_matrix  # the training preferences (users x items)
    seen: sp.csr_matrix  # what exclude_seen removes
    users: np.ndarray  # user indices (in the matrix) with at least one relevant item
    relevant: sp.csr_matrix  # rows aligned with ``users``
    dropped_unknown_items: int

    @classmethod
    def build(
        cls,
        trained_on: InteractionMatrix | Recommender,
        held_out: pa.Table,
        event_types: dict[str, EventTypeSpec] | None = None,
        *,
        min_rating: float | None = None,
        liked_rating: float = DEFAULT_LIKED_RATING,
    ) -> Holdout:
        positives = positive_rows(
            held_out, event_types, liked_rating=liked_rating, min_rating=min_rating
        )
        if isinstance(trained_on, Recommender):
            users, items = trained_on.users_, trained_on.items_
            train, seen = trained_on.user_items_, trained_on.seen_
        else:
            users, items = trained_on.users, trained_on.items
            train, seen = trained_on.matrix, trained_on.seen()
        relevance = relevance_matrix(positives, users, items)
        has = np.flatnonzero(np.diff(relevance.matrix.indptr) > 0)
        return cls(
            train.tocsr(),
            seen.tocsr(),
            has,
            relevance.matrix[has].tocsr(),
            relevance.dropped_unknown_items,
        )

    def __len__(self) -> int:
        return len(self.users)

    def sample(self, max_users: int, random_state: int = 0) -> Holdout:
        """At most ``max_users`` of the held-out users (a seeded sample), so validation
        costs the same on a million users as on ten thousand."""
        if len(self.users) <= max_users:
            return self
        rng = np.random.default_rng(random_state)
        chosen = np.sort(rng.choice(len(self.users), max_users, replace=False))
        return Holdout(
            self.train, self.seen, self.users[chosen], self.relevant[chosen],
            self.dropped_unknown_items,
        )  # fmt: skip

    def rank(self, model: Recommender, k: int, users: np.ndarray | None = None) -> np.ndarray:
        rows = self.users if users is None else users
        indices, _ = model.recommend_indices(rows, k, exclude_seen=True)
        return indices

    def ndcg(self, model: Recommender, k: int = 10, chunk: slice | None = None) -> float:
        """Mean NDCG@k over (a chunk of) the held-out users: AutoML's objective."""
        return self.accuracy(model, k, chunk).get(f"ndcg@{k}", float("nan"))

    def accuracy(
        self, model: Recommender, k: int = 10, chunk: slice | None = None
    ) -> dict[str, float]:
        """Accuracy metrics at k (ndcg, recall, precision, map, mrr, hitrate) over (a chunk
        of) the held-out users; empty when the chunk has no user."""
        chunk = chunk or slice(None)
        users = self.users[chunk]
        if len(users) == 0:
            return {}
        ranked = self.rank(model, k, users)
        metrics = evaluate_rankings(ranked, self.relevant[chunk], ks=(k,))
        return {f"{name}@{k}": metrics[f"{name}@{k}"] for name in ACCURACY_NAMES}

    def ndcg_from_scores(self, scores: np.ndarray, k: int = 10) -> float:
        """NDCG@k from precomputed scores of ``self.users`` (the blend search reuses them)."""
        return self.accuracy_from_scores(scores, k)[f"ndcg@{k}"]

    def accuracy_from_scores(self, scores: np.ndarray, k: int = 10) -> dict[str, float]:
        """Accuracy metrics at k from precomputed scores of ``self.users``."""
        scores = np.array(scores, dtype=np.float32, copy=True)
        seen = sp.coo_matrix(self.seen[self.users])
        scores[seen.row, seen.col] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        ranked = np.take_along_axis(part, order, axis=1)
        metrics = evaluate_rankings(ranked, self.relevant, ks=(k,))
        return {f"{name}@{k}": metrics[f"{name}@{k}"] for name in ACCURACY_NAMES}

    def full_metrics(self, model: Recommender, ks: Sequence[int] = (5, 10, 20)) -> dict[str, float]:
        """Accuracy and trade-off metrics at every K, for reports."""
        ranked = self.rank(model, max(ks))
        popularity = np.asarray(self.train.astype(bool).sum(axis=0)).ravel()
        return evaluate_rankings(
            ranked,
            self.relevant,
            ks=ks,
            item_popularity=popularity,
            n_train_users=self.train.shape[0],
            train_matrix=self.train,
        )


def validation_split(
    data: InteractionLog, fraction: float, random_state: int
) -> tuple[InteractionLog, pa.Table, dict[str, Any]]:
    """Split ``data`` for AutoML: each user's latest ``fraction`` when times order the
    rows; a seeded random share per user when they cannot (absent, partial or constant
    times). Returns the part to fit on, the validation part, and how it was split."""
    table = data.table
    status = time_status(table)
    if status == "usable":
        protocol, options = "user-temporal", {"fraction": fraction}
    else:
        protocol = "random-holdout"
        options = {"fraction": fraction, "random_state": random_state}
    counts = pc.value_counts(table.column("user_id")).field("counts").to_numpy()
    eligible = int((counts >= 2).sum())
    if eligible == 0:
        raise InteractionsError(
            f"too little data for a validation split: none of the {len(counts):,} users "
            "has 2 or more interactions (one is needed as history, one as target)"
        )
    rows = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    split = make_splitter(protocol, **options)(rows)
    keep = np.zeros(table.num_rows, dtype=bool)
    keep[split.train.column("_row").to_numpy()] = True
    described = {
        "protocol": protocol,
        "timestamps": status,
        "fraction": fraction,
        "users_split": eligible,
    }
    if protocol == "random-holdout":
        described["random_state"] = random_state
        described["reason"] = {
            "absent": "the data has no timestamps",
            "partial": "some rows have no timestamp, so their order is unknown",
            "constant": "most users' rows share one timestamp, so time orders nothing",
        }[status]
    return data.slice_rows(keep, "automl-train"), split.test.drop(["_row"]), described
