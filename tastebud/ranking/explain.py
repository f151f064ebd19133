"""Explanations: one short, true reason per listed item, from the source that led its score.

A personal item names the history item it is most like: by content when content led its
score, by the model's own item similarity when CF did (either one when the other is
missing). No history item explains more than its share of the list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tastebud.ranking.history import History
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import CF, CONTENT, NEW, POPULAR, TRENDING
from tastebud.ranking.work import Work

VERBS = {
    "play": "played",
    "like": "liked",
    "view": "viewed",
    "click": "clicked",
    "add_to_cart": "added to your cart",
    "purchase": "bought",
    "rating": "rated",
}


@dataclass(frozen=True)
class Explainer:
    """Explains the picked items (a request with ``explain=false`` skips it)."""

    name: str = "explain"

    def explain(self, work: Work) -> None:
        order, blended = work.order, work.blended
        if not work.request.explain or not len(order) or blended is None:
            return
        ramp = blended.ramp
        contributions = np.stack(
            [
                ramp * blended.cf_weight * blended.cf[order],
                ramp * blended.content_weight * blended.content[order],
                (1.0 - ramp) * blended.prior[order],
            ]
        )
        work.explanations = explain(
            work.snapshot,
            work.history,
            work.positions[order],
            work.bits[order],
            contributions,
            work.request.category,
        )


def explain(
    snapshot: Snapshot,
    history: History,
    positions: np.ndarray,
    bits: np.ndarray,
    contributions: np.ndarray,
    category: str | None,
) -> list[str | None]:
    """One short, true reason per item: the largest contribution among its sources.

    A personal item names the history item it is most like: by content when content led
    its score, by the model's own item similarity when CF did (either one when the other
    is missing). No history item explains more than its share of the list (the list's
    personal items over the anchors, rounded up), so a list whose history holds several
    items never reads one reason throughout; an item with no similarity to any unused
    anchor says "based on your history"."""
    catalog = snapshot.catalog
    # Compared as arrays (float32, as the scores are), looped over as Python scalars.
    personal_led = ((contributions[0] + contributions[1]) > contributions[2]).tolist()
    content_led = (contributions[1] > contributions[0]).tolist()
    anchor_for: list[int | None] = [None] * len(positions)
    if history.anchors and any(personal_led):
        anchor_for = _anchors_for(snapshot, history, positions, personal_led, content_led)
    primaries = catalog.primary_category[positions].tolist()
    out: list[str | None] = []
    for row, item_bits in enumerate(bits.tolist()):
        primary = primaries[row]
        primary_name = catalog.category_names[primary] if primary >= 0 else None
        where = category or primary_name
        if personal_led[row] and history.anchors:
            chosen = anchor_for[row]
            if chosen is None:
                out.append("based on your history")
                continue
            anchor, verb = history.anchors[chosen]
            title = catalog.titles[anchor] or str(snapshot.item_ids[anchor])
            if content_led[row]:
                out.append(f"similar to {title}")
            elif verb is None:
                out.append(f"because {title} is in your history")
            elif verb == "session":
                out.append(f"because you just looked at {title}")
            else:
                out.append(f"because you {VERBS.get(verb, 'interacted with')} {title}")
        elif item_bits & TRENDING:
            out.append(f"trending in {category}" if category else "trending now")
        elif item_bits & NEW:
            out.append(f"new in {where}" if where else "new")
        elif item_bits & POPULAR:
            out.append(f"popular in {category}" if category else "popular right now")
        elif item_bits & (CF | CONTENT):
            out.append("based on your history")
        else:
            out.append(None)
    return out


def _anchors_for(
    snapshot: Snapshot,
    history: History,
    positions: np.ndarray,
    personal_led: list[bool],
    content_led: list[bool],
) -> list[int | None]:
    """The anchor (index into ``history.anchors``) each personal item is explained by."""
    anchors = np.array([p for p, _ in history.anchors], dtype=np.int64)
    by_content = _vector_similarity(snapshot, positions, anchors)
    by_model = by_content if snapshot.vector_source == "cf" else None
    if by_model is None:
        by_model = _model_similarity(snapshot, positions, anchors)
    personal = [row for row, led in enumerate(personal_led) if led]
    cap = -(-len(personal) // len(anchors))  # ceil: each anchor's share of the list
    used = [0] * len(anchors)
    chosen: list[int | None] = [None] * len(positions)
    ranked_content, ranked_model = _ranked(by_content), _ranked(by_model)
    content_first = snapshot.vector_source == "content"
    for row in personal:
        first, second = (
            (ranked_content, ranked_model)
            if content_led[row] and content_first
            else (ranked_model, ranked_content)
        )
        ranked = first if first is not None and first.any_finite[row] else second
        if ranked is None:
            continue
        usable = ranked.usable[row]
        for anchor in ranked.order[row]:
            if used[anchor] < cap and usable[anchor]:
                chosen[row] = anchor
                used[anchor] += 1
                break
    return chosen


@dataclass(frozen=True)
class _Ranked:
    """A similarity matrix (items x anchors) read as Python lists, computed for all rows at
    once (a per-row ``argsort`` cost about half of explaining): each row's anchors best first
    (NaN last, stable), which are usable (finite and > 0), whether any is finite."""

    order: list[list[int]]
    usable: list[list[bool]]
    any_finite: list[bool]


def _ranked(similarity: np.ndarray | None) -> _Ranked | None:
    if similarity is None:
        return None
    finite = np.isfinite(similarity)
    # NaN sorts last, in index order (a stable sort): as -inf would, without a copy to make it.
    order = np.argsort(-similarity, axis=1, kind="stable")
    with np.errstate(invalid="ignore"):
        usable = finite & (similarity > 0)
    return _Ranked(order.tolist(), usable.tolist(), finite.any(axis=1).tolist())


def _vector_similarity(
    snapshot: Snapshot, positions: np.ndarray, anchors: np.ndarray
) -> np.ndarray | None:
    """Cosine of the snapshot's unit vectors (content, or CF factors without content); NaN
    where an item has no vector."""
    if snapshot.vectors is None:
        return None
    left, right = snapshot.vectors[positions], snapshot.vectors[anchors]
    similarity = left @ right.T
    similarity[~left.any(axis=1)] = np.nan
    similarity[:, ~right.any(axis=1)] = np.nan
    return similarity


def _model_similarity(
    snapshot: Snapshot, positions: np.ndarray, anchors: np.ndarray
) -> np.ndarray | None:
    """The model's item similarity from each anchor to each item (its own neighbours: how
    much that history item adds to the item's score); NaN where either is unknown to it."""
    serving = snapshot.model
    if serving is None or not len(snapshot.model_column):
        return None
    columns, anchor_columns = snapshot.model_column[positions], snapshot.model_column[anchors]
    known, known_anchors = columns >= 0, anchor_columns >= 0
    similarity = np.full((len(positions), len(anchors)), np.nan, dtype=np.float32)
    if known.any() and known_anchors.any():
        from_anchors = serving.model.item_similarity(anchor_columns[known_anchors], columns[known])
        similarity[np.ix_(known, known_anchors)] = from_anchors.T
    return similarity
