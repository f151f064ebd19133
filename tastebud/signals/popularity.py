"""Item popularity: each item's time-decayed weighted engagement over a window.

score(item) = sum over its events of weight(event type) * 2^(-age / half-life), age measured
from the window's end, so the same window always gives the same scores. The ``popularity``
job publishes it (with its support rules and fills); the ``item_popularity`` feature view
stores it.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.signals.window import EmptyWindow, Window, engine, event_weights, source


def compute(window: Window) -> pa.Table:
    """item_id, score, events, rank over the popularity window ending at the window's end."""
    return score_window(window, window.settings.jobs.popularity_window_days)


def score_window(window: Window, window_days: float | None, *, decay: bool = True) -> pa.Table:
    """item_id, score, events, rank over the ``window_days`` (None: all time) before the
    window's end; EmptyWindow when it holds no event. Without ``decay`` the score is the
    plain weighted engagement (the fills: a 7-day half-life would round a year-old window
    to zero)."""
    end = window.end
    start = None if window_days is None else end - timedelta(days=window_days)
    half_life = window.settings.jobs.popularity_half_life_days if decay else None
    scores = engine(window).item_scores(
        source(window),
        start,
        end,
        weights=event_weights(window.settings),
        half_life_days=half_life,
    )
    if scores.num_rows == 0:
        since = "the first event" if start is None else start.isoformat()
        raise EmptyWindow(f"no events between {since} and {end.isoformat()}")
    table = pa.table(
        {
            "item_id": scores.column("item_id"),
            "score": pc.round(scores.column("score"), 6),
            "events": scores.column("events"),
        }
    )
    order = pc.sort_indices(table, [("score", "descending"), ("item_id", "ascending")])
    table = table.take(order)
    return table.append_column("rank", pa.array(np.arange(1, table.num_rows + 1), pa.int64()))
