"""The user x item matrix every collaborative model trains on.

Each row of the log becomes a signed preference weight: the event type's weight (or the
row's own ``weight``), times a rating strength for explicit ratings, times an optional time
decay. Weights are summed per (user, item); a positive sum is a preference and a negative
one a rejection (kept apart, so it is never recommended again). A confidence transform then
shapes the positive values. The result is cached by a hash of the log's snapshot and the
options, so AutoML trials and repeated runs don't rebuild it.

Over 400 lines because it is one recipe (options, weights, decay, encoding, signed sums,
confidence) with its result type and its cache: the cache key is every option, and the
Spark engine's build shares the last steps (``signed_matrices``, ``finished_matrix``).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from tastebud.config import EventTypeSpec, default_event_types
from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.data.vocabulary import Vocabulary

SECONDS_PER_DAY = 86_400.0


class MatrixOptions(BaseModel):
    """How events become preference strengths (all tunable by AutoML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    half_life_days: float | None = Field(
        default=None, gt=0, description="Time decay of an event's weight; None keeps all equal."
    )
    liked_rating: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Ratings at or above this fraction of the scale's maximum count as liked.",
    )
    unliked_rating_weight: float = Field(
        default=0.2,
        ge=-1,
        le=1,
        description="Strength of a rating below `liked_rating` (0 drops it, < 0 is negative).",
    )
    rating_max: float | None = Field(
        default=None, gt=0, description="The rating scale's maximum; None reads it off the data."
    )
    transform: Literal["none", "binary", "log", "saturate", "bm25"] = Field(
        default="none",
        description="Confidence from summed weight w: w; 1; 1 + alpha*log1p(w); `saturate`: "
        "w up to one event's worth and 1 + ln(w) above (repeats count logarithmically, rating "
        "strengths keep their contrast); or `bm25`: an item's weight falls with its "
        "popularity and a user's with the length of their history.",
    )
    normalize: bool = Field(
        default=False,
        description="Divide the confidences by their median, so a typical interaction "
        "weighs 1 and a model's regularization means the same on every data shape.",
    )
    alpha: float = Field(default=1.0, gt=0)
    bm25_k1: float = Field(default=100.0, gt=0, description="BM25 saturation of repeats.")
    bm25_b: float = Field(default=0.8, ge=0, le=1, description="BM25 length normalisation.")
    min_user_interactions: int = Field(default=1, ge=1)
    min_item_interactions: int = Field(default=1, ge=1)

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


@dataclass
class InteractionMatrix:
    """Preferences (users x items, CSR float32) with the vocabularies that name its axes."""

    matrix: sp.csr_matrix
    users: Vocabulary
    items: Vocabulary
    negatives: sp.csr_matrix
    # Per item and day since ``day0``: summed weights, so popularity can decay at any rate.
    item_days: sp.csr_matrix
    day0: float
    reference_time: float
    snapshot: str
    options: MatrixOptions
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def seen(self) -> sp.csr_matrix:
        """Everything a user interacted with, liked or not: what `exclude_seen` removes."""
        if self.negatives.nnz == 0:
            return self.matrix
        return (abs(self.matrix) + abs(self.negatives)).tocsr()

    def item_popularity(self, half_life_days: float | None = None) -> np.ndarray:
        """Summed positive weight per item, decayed to ``reference_time`` when asked."""
        if self.item_days.shape[1] == 0:
            return np.zeros(len(self.items))
        if half_life_days is None:
            return np.asarray(self.item_days.sum(axis=1)).ravel()
        days = np.arange(self.item_days.shape[1], dtype=np.float64)
        age = (self.reference_time - self.day0) / SECONDS_PER_DAY - days
        return self.item_days @ np.power(0.5, np.maximum(age, 0) / half_life_days)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        sp.save_npz(folder / "matrix.npz", self.matrix)
        sp.save_npz(folder / "negatives.npz", self.negatives)
        sp.save_npz(folder / "item_days.npz", self.item_days)
        self.users.save(folder / "users.parquet")
        self.items.save(folder / "items.parquet")
        meta = {
            "day0": self.day0,
            "reference_time": self.reference_time,
            "snapshot": self.snapshot,
            "options": self.options.model_dump(),
            "stats": self.stats,
        }
        (folder / "matrix.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> InteractionMatrix:
        meta = json.loads((folder / "matrix.json").read_text())
        return cls(
            matrix=sp.load_npz(folder / "matrix.npz").tocsr(),
            users=Vocabulary.load(folder / "users.parquet"),
            items=Vocabulary.load(folder / "items.parquet"),
            negatives=sp.load_npz(folder / "negatives.npz").tocsr(),
            item_days=sp.load_npz(folder / "item_days.npz").tocsr(),
            day0=meta["day0"],
            reference_time=meta["reference_time"],
            snapshot=meta["snapshot"],
            options=MatrixOptions(**meta["options"]),
            stats=meta["stats"],
        )


def row_weights(
    log: pa.Table, options: MatrixOptions, event_types: dict[str, EventTypeSpec]
) -> tuple[np.ndarray, float | None]:
    """Signed weight of each log row (before decay), and the rating scale used."""
    types = log.column("event_type")
    unknown = set(pc.unique(types).to_pylist()) - set(event_types)
    if unknown:
        raise InteractionsError(
            f"unknown event types {sorted(unknown)}; configure them under [events.types] "
            f"(known: {', '.join(sorted(event_types))})"
        )
    names = sorted(event_types)
    codes = np.asarray(pc.index_in(types, value_set=pa.array(names)).to_numpy(), np.int64)
    type_weight = np.array([event_types[name].weight for name in names])[codes]
    explicit = log.column("weight").to_numpy(zero_copy_only=False).astype(np.float64)
    weights = np.where(np.isnan(explicit), type_weight, explicit)

    rating_types = [i for i, name in enumerate(names) if event_types[name].value == "rating"]
    values = log.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    is_rating = np.isin(codes, rating_types) & ~np.isnan(values)
    scale = None
    if is_rating.any():
        scale = options.rating_max or float(values[is_rating].max())
        if scale <= 0:
            raise InteractionsError("ratings must have a positive maximum; set rating_max")
        share = np.clip(values[is_rating] / scale, 0.0, 1.0)
        strength = np.where(
            share >= options.liked_rating, share, options.unliked_rating_weight * share
        )
        weights[is_rating] = np.where(np.isnan(explicit[is_rating]), 1.0, weights[is_rating])
        weights[is_rating] *= strength
    return weights, scale


def build_matrix(
    log: InteractionLog,
    options: MatrixOptions | None = None,
    event_types: dict[str, EventTypeSpec] | None = None,
    *,
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
) -> InteractionMatrix:
    """Build the preference matrix; ``users``/``items`` pin the axes (rows outside dropped)."""
    options = options or MatrixOptions()
    event_types = event_types or default_event_types()
    table = log.table
    if table.num_rows == 0:
        raise InteractionsError("no interactions to learn from: the data is empty")
    weights, _ = row_weights(table, options, event_types)
    seconds = _event_seconds(table)
    reference = float(seconds.max())
    if options.half_life_days is not None:
        age_days = (reference - seconds) / SECONDS_PER_DAY
        weights = weights * np.power(0.5, age_days / options.half_life_days)

    stats = {"rows": table.num_rows}
    user_vocab, rows = _encode(table.column("user_id"), users)
    item_vocab, cols = _encode(table.column("item_id"), items)
    known = (rows >= 0) & (cols >= 0)
    if not known.all():
        stats["rows_outside_vocabulary"] = int((~known).sum())
        rows, cols, weights, seconds = rows[known], cols[known], weights[known], seconds[known]

    positive, negative, user_vocab, item_vocab, rows, cols, (weights, seconds) = signed_matrices(
        rows,
        cols,
        weights,
        user_vocab,
        item_vocab,
        options,
        stats,
        filter_counts=users is None and items is None,
        columns=(weights, seconds),
    )
    day0 = math.floor(float(seconds.min()) / SECONDS_PER_DAY) * SECONDS_PER_DAY
    day = ((seconds - day0) // SECONDS_PER_DAY).astype(np.int64)
    return finished_matrix(
        positive,
        negative,
        user_vocab,
        item_vocab,
        cols=cols,
        day=day,
        day_weight=np.maximum(weights, 0.0),
        day0=day0,
        reference=reference,
        snapshot=log.snapshot,
        options=options,
        stats=stats,
    )


def _event_seconds(table: pa.Table) -> np.ndarray:
    """Each row's time in epoch seconds; a row without one counts as the oldest (all zero
    when no row has a time)."""
    stamps = table.column("timestamp")
    if stamps.null_count == len(stamps):
        return np.zeros(table.num_rows)
    micros = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    seconds = np.asarray(micros, dtype=np.float64) / 1e6
    return np.where(np.isnan(seconds), np.nanmin(seconds), seconds)


def finished_matrix(
    positive: sp.spmatrix,
    negative: sp.spmatrix,
    users: Vocabulary,
    items: Vocabulary,
    *,
    cols: np.ndarray,
    day: np.ndarray,
    day_weight: np.ndarray,
    day0: float,
    reference: float,
    snapshot: str,
    options: MatrixOptions,
    stats: dict[str, int],
) -> InteractionMatrix:
    """The last step of every matrix build (here and the Spark engine's): each item's
    positive weight per day since ``day0`` (``day`` counts days from it), the counts, and
    the confidence transform."""
    item_days = sp.csr_matrix(
        (day_weight, (cols, day)), shape=(positive.shape[1], int(day.max()) + 1)
    )
    item_days.sum_duplicates()
    stats.update(
        users=positive.shape[0],
        items=positive.shape[1],
        preferences=positive.nnz,
        negatives=negative.nnz,
    )
    return InteractionMatrix(
        matrix=_confidence(positive, options).astype(np.float32),
        users=users,
        items=items,
        negatives=negative.tocsr().astype(np.float32),
        item_days=item_days,
        day0=day0,
        reference_time=reference,
        snapshot=snapshot,
        options=options,
        stats=stats,
    )


def _encode(
    column: pa.ChunkedArray, vocabulary: Vocabulary | None
) -> tuple[Vocabulary, np.ndarray]:
    """A sorted vocabulary of the column and each row's index in it (-1 outside a given
    vocabulary). Dictionary-encoding hashes each id once; the vocabulary's own lookup would
    hash every id a second time."""
    if vocabulary is not None:
        return vocabulary, vocabulary.index(column)
    encoded = column.combine_chunks().dictionary_encode()
    order = np.asarray(pc.sort_indices(encoded.dictionary).to_numpy(), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    return Vocabulary(encoded.dictionary.take(pa.array(order))), codes


def _confidence(matrix: sp.csr_matrix, options: MatrixOptions) -> sp.csr_matrix:
    result = matrix.copy()
    if options.transform == "binary":
        result.data = np.ones_like(result.data)
    elif options.transform == "log":
        result.data = 1.0 + options.alpha * np.log1p(result.data)
    elif options.transform == "saturate":
        # Continuous with a continuous slope at w = 1 (Hu, Koren & Volinsky's log scaling of
        # repeats, leaving single events and rating strengths as they are).
        data = result.data
        result.data = np.where(data <= 1.0, data, 1.0 + np.log(np.maximum(data, 1.0)))
    elif options.transform == "bm25":
        # lazy: implicit (and numba) load only when BM25 is asked for, not with every matrix
        from implicit.nearest_neighbours import bm25_weight

        # implicit's BM25 weighting (rows = users as documents, items as terms). An item in
        # every history gets idf 0; a small floor keeps it a preference rather than a hole.
        weighted = bm25_weight(result, K1=options.bm25_k1, B=options.bm25_b).tocsr()
        weighted.data = np.maximum(weighted.data, 1e-3 * max(float(weighted.data.max()), 1e-9))
        result = weighted
    if options.normalize and result.nnz:
        median = float(np.median(result.data))
        if median > 0:
            result.data = result.data / median
    return result


def signed_matrices(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    user_vocab: Vocabulary,
    item_vocab: Vocabulary,
    options: MatrixOptions,
    stats: dict[str, int],
    *,
    filter_counts: bool,
    columns: tuple[np.ndarray, ...],
) -> tuple[
    sp.csr_matrix,
    sp.csr_matrix,
    Vocabulary,
    Vocabulary,
    np.ndarray,
    np.ndarray,
    tuple[np.ndarray, ...],
]:
    """Each (user, item)'s summed weight split into the positive signal and the rejected
    items, then (``filter_counts``) the minimum counts applied, the per-row ``rows``,
    ``cols`` and ``columns`` following the kept users and items. One step for
    ``build_matrix`` and the engines' matrix (``tastebud.engines.matrix``)."""
    shape = (len(user_vocab), len(item_vocab))
    summed = sp.csr_matrix((weights, (rows, cols)), shape=shape, dtype=np.float64)
    summed.sum_duplicates()
    positive = summed.copy()
    positive.data = np.where(positive.data > 0, positive.data, 0.0)
    positive.eliminate_zeros()
    negative = summed.copy()
    negative.data = np.where(negative.data <= 0, 1.0, 0.0)  # rejected, or no weight
    negative.eliminate_zeros()

    if filter_counts and (options.min_item_interactions > 1 or options.min_user_interactions > 1):
        positive, negative, user_vocab, item_vocab, keep_rows, keep_cols = _filter_counts(
            positive, negative, user_vocab, item_vocab, options, stats
        )
        row_map = np.full(shape[0], -1)
        row_map[keep_rows] = np.arange(len(keep_rows))
        col_map = np.full(shape[1], -1)
        col_map[keep_cols] = np.arange(len(keep_cols))
        rows, cols = row_map[rows], col_map[cols]
        kept = (rows >= 0) & (cols >= 0)
        rows, cols = rows[kept], cols[kept]
        columns = tuple(column[kept] for column in columns)
    if positive.nnz == 0:
        raise InteractionsError(
            "no positive signal left: every interaction has zero or negative weight "
            "(or was filtered by the minimum counts)"
        )
    return positive, negative, user_vocab, item_vocab, rows, cols, columns


def _filter_counts(
    positive: sp.csr_matrix,
    negative: sp.csr_matrix,
    users: Vocabulary,
    items: Vocabulary,
    options: MatrixOptions,
    stats: dict[str, int],
) -> tuple[sp.csr_matrix, sp.csr_matrix, Vocabulary, Vocabulary, np.ndarray, np.ndarray]:
    """Drop rare items, then rare users (one pass each, so the result is predictable)."""
    item_counts = np.diff(positive.tocsc().indptr)
    keep_cols = np.flatnonzero(item_counts >= options.min_item_interactions)
    positive = positive[:, keep_cols]
    user_counts = np.diff(positive.tocsr().indptr)
    keep_rows = np.flatnonzero(user_counts >= options.min_user_interactions)
    positive = positive[keep_rows].tocsr()
    negative = negative[keep_rows][:, keep_cols].tocsr()
    stats["users_below_minimum"] = len(users) - len(keep_rows)
    stats["items_below_minimum"] = len(items) - len(keep_cols)
    new_users = Vocabulary(users.ids.take(pa.array(keep_rows)))
    new_items = Vocabulary(items.ids.take(pa.array(keep_cols)))
    return positive, negative, new_users, new_items, keep_rows, keep_cols


class MatrixCache:
    """Built matrices on disk, keyed by (data snapshot, options, event types); the ``keep``
    most recently used entries stay."""

    def __init__(self, folder: Path, keep: int = 4) -> None:
        self.folder = folder
        self.keep = keep

    @staticmethod
    def key(
        log: InteractionLog, options: MatrixOptions, event_types: dict[str, EventTypeSpec]
    ) -> str:
        types = json.dumps({k: v.model_dump() for k, v in sorted(event_types.items())})
        text = f"{log.snapshot}:{options.model_dump_json()}:{types}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get_or_build(
        self,
        log: InteractionLog,
        options: MatrixOptions,
        event_types: dict[str, EventTypeSpec] | None = None,
    ) -> InteractionMatrix:
        event_types = event_types or default_event_types()
        entry = self.folder / self.key(log, options, event_types)
        if (entry / "matrix.json").exists():
            try:
                matrix = InteractionMatrix.load(entry)
                entry.touch()  # most recently used
                return matrix
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is rebuilt below
        built = build_matrix(log, options, event_types)
        partial = entry.with_name(entry.name + ".partial")
        built.save(partial)
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        partial.rename(entry)
        self._evict()
        return built

    def _evict(self) -> None:
        entries = [path for path in self.folder.iterdir() if not path.name.endswith(".partial")]
        entries.sort(key=lambda path: path.stat().st_mtime, reverse=True)
        for stale in entries[self.keep :]:
            shutil.rmtree(stale, ignore_errors=True)
