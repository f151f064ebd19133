"""The training matrix from pre-aggregated parts, for engines that scan the event log
elsewhere (Spark): ``tastebud.data.matrix.build_matrix`` needs every row in this process,
while its result only needs, per (user, item, UTC day), the summed signed weight, the summed
positive weight, the earliest time and the row count. An engine computes those parts on
its executors (``MATRIX_PARTS``); ``assemble`` builds the same ``InteractionMatrix`` from
them that ``build_matrix`` builds from the rows (held equal by tests/engines).
"""

from __future__ import annotations

import hashlib
import math

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.data.interactions import InteractionsError
from tastebud.data.matrix import (
    SECONDS_PER_DAY,
    InteractionMatrix,
    MatrixOptions,
    _encode,
    finished_matrix,
    signed_matrices,
)
from tastebud.data.vocabulary import Vocabulary

MATRIX_PARTS = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("day", pa.int64()),  # floor(seconds / 86400): the UTC day number
        ("weight", pa.float64()),  # sum of signed (decayed) weights
        ("positive", pa.float64()),  # sum of max(weight, 0)
        ("first", pa.float64()),  # earliest time, epoch seconds
        ("rows", pa.int64()),
    ]
)


def event_store_snapshot(last_seq: int, rows: int, query: object) -> str:
    """The snapshot id ``read_event_store`` gives the same read of the event store."""
    return hashlib.sha256(f"events:{last_seq}:{rows}:{query!r}".encode()).hexdigest()[:16]


def assemble(
    parts: pa.Table,
    *,
    reference: float,
    snapshot: str,
    options: MatrixOptions,
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
) -> InteractionMatrix:
    """``build_matrix``'s result from ``MATRIX_PARTS`` (``reference``: the newest event's
    epoch seconds, the time decay's origin)."""
    if parts.num_rows == 0:
        raise InteractionsError("no interactions to learn from: the data is empty")
    counts = parts.column("rows").to_numpy()
    stats = {"rows": int(counts.sum())}
    user_vocab, rows = _encode(parts.column("user_id"), users)
    item_vocab, cols = _encode(parts.column("item_id"), items)
    weight = parts.column("weight").to_numpy()
    positive_weight = parts.column("positive").to_numpy()
    day = parts.column("day").to_numpy()
    first = parts.column("first").to_numpy()
    known = (rows >= 0) & (cols >= 0)
    if not known.all():
        stats["rows_outside_vocabulary"] = int(counts[~known].sum())
        rows, cols = rows[known], cols[known]
        weight, positive_weight, day, first = (
            weight[known],
            positive_weight[known],
            day[known],
            first[known],
        )

    positive, negative, user_vocab, item_vocab, rows, cols, (positive_weight, day, first) = (
        signed_matrices(
            rows,
            cols,
            weight,
            user_vocab,
            item_vocab,
            options,
            stats,
            filter_counts=users is None and items is None,
            columns=(positive_weight, day, first),
        )
    )
    day0 = math.floor(float(first.min()) / SECONDS_PER_DAY) * SECONDS_PER_DAY
    return finished_matrix(
        positive,
        negative,
        user_vocab,
        item_vocab,
        cols=cols,
        day=day - int(day0 // SECONDS_PER_DAY),
        day_weight=positive_weight,
        day0=day0,
        reference=reference,
        snapshot=snapshot,
        options=options,
        stats=stats,
    )


def unknown_types(types: pa.Array | list[str], known: set[str]) -> None:
    """InteractionsError for event types the settings do not know (as ``row_weights``)."""
    unknown = set(pc.unique(pa.array(types, pa.string())).to_pylist()) - known
    if unknown:
        raise InteractionsError(
            f"unknown event types {sorted(unknown)}; configure them under [events.types] "
            f"(known: {', '.join(sorted(known))})"
        )
