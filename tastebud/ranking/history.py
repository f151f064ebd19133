"""The first stage of a request: the user's history, and their CF scores from it.

History is the model's training row plus what happened since (recent activity newer than
the model, an anonymous session's items): what the user consumed, disliked, the items an
explanation may point to, and the 1 x items row the model folds in when it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import Activity, UserContext

ANCHORS = 20  # history items an explanation may point to
_EMPTY = np.zeros(0, np.int64)


@dataclass
class History:
    row: int  # the user's model row, -1 when the model does not know them
    interactions: int
    consumed: np.ndarray  # item-space positions
    negative: np.ndarray
    anchors: list[tuple[int, str | None]]  # (position, event type; None: training history)
    model_history: sp.csr_matrix | None  # 1 x model items, when the history changed
    content_seeds: list[str]  # item ids the content candidates start from


@dataclass
class _Training:
    """The user's row in the model: interactions (columns, values) and everything seen."""

    row: int = -1
    cols: np.ndarray = field(default_factory=lambda: _EMPTY)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    seen: np.ndarray = field(default_factory=lambda: _EMPTY)


def read_history(snapshot: Snapshot, context: UserContext, recent_items: int) -> History:
    """The user's interactions: the model's training row plus what happened since.
    ``recent_items``: how many anchors seed the content candidates."""
    training = _training(snapshot, context.user_id)
    serving = snapshot.model
    trained_until = serving.trained_until if serving is not None else None
    # The newest event per item decides whether it is now liked or disliked.
    latest: dict[str, Activity] = {}
    for activity in context.recent:
        latest.pop(activity.item_id, None)  # re-insert: dict order is then newest last
        latest[activity.item_id] = activity
    recent_ids = list(latest)
    recent_positions = snapshot.positions(recent_ids) if recent_ids else _EMPTY
    session_positions = (
        snapshot.positions(list(context.session_items)) if context.session_items else _EMPTY
    )
    positive = [
        int(p)
        for p, item_id in zip(recent_positions, recent_ids, strict=True)
        if p >= 0 and latest[item_id].weight > 0
    ]
    negative_recent = [
        int(p)
        for p, item_id in zip(recent_positions, recent_ids, strict=True)
        if p >= 0 and latest[item_id].weight < 0
    ]
    positive += [int(p) for p in session_positions if p >= 0]
    # Sets of ``tolist()`` ints: ~4x faster than ints pulled one by one from an array, and
    # faster than numpy's set routines at a few hundred items.
    train_positions: list[int] = []
    seen_positions: set[int] = set()
    if training.row >= 0:
        liked_cols = training.cols[training.values > 0]
        train_positions = snapshot.model_to_space[liked_cols].tolist()
        seen_positions = set(snapshot.model_to_space[training.seen].tolist())
    liked = set(train_positions) | set(positive)
    negative = (seen_positions - liked) | set(negative_recent)
    negative -= set(positive)
    consumed = liked | seen_positions
    anchors = _anchors(snapshot, training, latest, recent_ids, recent_positions, session_positions)
    fresh = _fresh_weights(context, trained_until)
    seed_positions = [p for p, _ in anchors[:recent_items]]
    return History(
        row=training.row,
        interactions=len(liked),
        consumed=np.fromiter(consumed, np.int64, len(consumed)),
        negative=np.fromiter(negative, np.int64, len(negative)),
        anchors=anchors,
        model_history=_model_history(snapshot, training, fresh),
        content_seeds=[str(i) for i in snapshot.item_ids[seed_positions].tolist()],
    )


def _training(snapshot: Snapshot, user_id: str | None) -> _Training:
    serving = snapshot.model
    if serving is None or user_id is None:
        return _Training()
    model = serving.model
    row = model.users_.index_of(user_id)
    if row < 0:
        return _Training()
    start, end = model.user_items_.indptr[row], model.user_items_.indptr[row + 1]
    cols = model.user_items_.indices[start:end].astype(np.int64)
    values = model.user_items_.data[start:end]
    start, end = model.seen_.indptr[row], model.seen_.indptr[row + 1]
    return _Training(row, cols, values, model.seen_.indices[start:end].astype(np.int64))


def _fresh_weights(context: UserContext, trained_until: float | None) -> dict[str, float]:
    """What happened since training, per item: recent events' weights, +1 per session item."""
    fresh: dict[str, float] = {}
    for activity in context.recent:
        if trained_until is None or activity.timestamp > trained_until:
            fresh[activity.item_id] = fresh.get(activity.item_id, 0.0) + activity.weight
    for item_id in context.session_items:
        fresh[item_id] = fresh.get(item_id, 0.0) + 1.0
    return fresh


def _anchors(
    snapshot: Snapshot,
    training: _Training,
    latest: dict[str, Activity],
    recent_ids: list[str],
    recent_positions: np.ndarray,
    session_positions: np.ndarray,
) -> list[tuple[int, str | None]]:
    """The history items an explanation may name, most telling first: recent liked events
    (newest first), the session's items, then the strongest training interactions."""
    anchors: list[tuple[int, str | None]] = []
    for item_id, position in reversed(list(zip(recent_ids, recent_positions, strict=True))):
        activity = latest[item_id]
        if position >= 0 and activity.weight > 0:
            anchors.append((int(position), activity.event_type))
    anchors += [(int(p), "session") for p in session_positions[::-1] if p >= 0]
    if training.row >= 0 and len(anchors) < ANCHORS:
        strongest = np.argsort(-training.values, kind="stable")[: ANCHORS - len(anchors)]
        anchors += [(p, None) for p in snapshot.model_to_space[training.cols[strongest]].tolist()]
    return anchors[:ANCHORS]


def _model_history(
    snapshot: Snapshot, training: _Training, fresh: dict[str, float]
) -> sp.csr_matrix | None:
    """The user's 1 x model-items row with what happened since training added; None when
    nothing since training is known to the model (the training row then serves as is)."""
    serving = snapshot.model
    if serving is None:
        return None
    columns = snapshot.model_column
    extra = {
        int(columns[snapshot.items.index_of(item_id)]): weight
        for item_id, weight in fresh.items()
        if item_id in snapshot.items and columns[snapshot.items.index_of(item_id)] >= 0
    }
    if not extra:
        return None
    values = dict(zip(training.cols.tolist(), training.values.tolist(), strict=True))
    for column, weight in extra.items():
        values[column] = values.get(column, 0.0) + weight
    kept = {c: v for c, v in values.items() if v > 0}
    return sp.csr_matrix(
        (
            np.fromiter(kept.values(), np.float32, len(kept)),
            np.fromiter(kept.keys(), np.int64, len(kept)),
            [0, len(kept)],
        ),
        shape=(1, len(serving.model.items_)),
    )


def user_scores(
    snapshot: Snapshot, history: History
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The user's factor vector (factor models) or dense scores (other models); None when
    the model has nothing to go on. New events since training are folded in on the spot:
    the user's factors are re-solved against the fixed item factors (implicit's
    ``recalculate_user``), so a play counts on the next request, not after retraining."""
    serving = snapshot.model
    if serving is None:
        return None, None
    factors = serving.factors
    if factors is not None:
        if history.model_history is not None:
            if history.model_history.nnz == 0:
                return None, None
            return factors.fold_in(history.model_history)[0], None
        if history.row >= 0:
            return factors.user_factors_[history.row], None
        return None, None
    if history.model_history is not None and history.model_history.nnz:
        return None, serving.model.score_histories(history.model_history)[0]
    if history.row >= 0:
        return None, serving.model.score_users(np.array([history.row]))[0]
    return None, None
