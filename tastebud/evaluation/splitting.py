"""Train/test splitters over an interactions table: the evaluation protocols.

Every splitter takes a ``pyarrow.Table`` with at least ``user_id`` (string), ``item_id``
(string) and ``timestamp`` (a timestamp; tz-naive values are read as UTC) and returns a
:class:`Split`. ``random-holdout`` (and ``strong-generalization`` with ``order="random"``)
never look at time, so for them ``timestamp`` may be missing or null: data without time
(plain pairs, play counts) can still be split. ``time_status`` says whether a table's times
can order a temporal split at all. Other columns (``rating``, ``weight``, ``event_type``...)
ride along unchanged and every part keeps the input's row order, so a split is a partition
of the rows.

Per-user splitters (``user-temporal``, ``leave-last-one``, ``random-holdout``,
``strong-generalization``) only test users with at least ``min_user_interactions``
interactions (default 2): a user with fewer keeps all of their rows in train, because one
interaction cannot be both history and target. Each tested user keeps at least one row in
train (or in fold-in). A split that leaves train or test empty is refused with
``ValueError`` rather than evaluated over nothing.

Ties in time are broken by row order (earlier row = earlier), so a split is deterministic;
random protocols are deterministic given ``random_state``. All work is vectorised (one
``lexsort`` over the rows), so a few million rows split in about a second.

Over 400 lines because the protocols share one vectorised core (row checks, per-user
positions, tail masks, ``_split``) and are read side by side to see how they differ.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
DEFAULT_MIN_USER_INTERACTIONS = 2
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

Order = Literal["time", "random"]


@dataclass(frozen=True)
class Split:
    """The parts of one split, with the protocol and options that produced it.

    ``fold_in`` is only filled by ``strong-generalization``: the earlier (or a random) part
    of each held-out user's interactions. Those users are absent from ``train``; a model is
    fitted on ``train`` and then given ``fold_in`` as the held-out users' history at
    recommendation time (e.g. ALS ``recalculate_user``), and judged on ``test``. For every
    other protocol ``fold_in`` is an empty table with the input's schema.
    """

    train: pa.Table
    test: pa.Table
    fold_in: pa.Table
    protocol: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """Row and user counts per part, for reports."""
        counts: dict[str, int] = {}
        for name, part in (("train", self.train), ("test", self.test), ("fold_in", self.fold_in)):
            counts[f"{name}_rows"] = part.num_rows
            counts[f"{name}_users"] = len(pc.unique(part.column("user_id")))
            counts[f"{name}_items"] = len(pc.unique(part.column("item_id")))
        return counts


@dataclass(frozen=True)
class _Rows:
    """The columns a splitter needs, as numpy arrays."""

    users: np.ndarray  # int64 codes, 0..n_users-1
    times: np.ndarray  # int64 since the epoch (UTC) in the column's own unit
    n_users: int
    per_second: int  # units of ``times`` per second

    def to_unit(self, micros: int) -> int:
        return micros * self.per_second // 1_000_000

    def to_datetime(self, value: int) -> datetime:
        micros = value * 1_000_000 // self.per_second
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _check_fraction(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_min_interactions(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        raise ValueError(f"min_user_interactions must be an integer >= 2, got {value!r}")
    return value


def _rows(table: pa.Table, *, need_time: bool = True) -> _Rows:
    """Validate the input and encode users and times once for all splitters; without
    ``need_time`` (random protocols) the timestamp column may be absent or null."""
    if not isinstance(table, pa.Table):
        raise ValueError(f"expected a pyarrow.Table of interactions, got {type(table).__name__}")
    required = REQUIRED_COLUMNS if need_time else ("user_id", "item_id")
    missing = [name for name in required if name not in table.column_names]
    if missing:
        raise ValueError(
            f"interactions table is missing column(s) {', '.join(missing)}; "
            f"it has {', '.join(table.column_names) or 'no columns'}"
        )
    if table.num_rows == 0:
        raise ValueError("interactions table is empty: nothing to split")
    for name in required:
        if table.column(name).null_count:
            hint = (
                "; a temporal protocol needs a time on every row (random-holdout needs none)"
                if name == "timestamp"
                else ""
            )
            raise ValueError(
                f"column {name} has {table.column(name).null_count} null value(s){hint}"
            )
    for name in ("user_id", "item_id"):
        kind = table.column(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise ValueError(f"column {name} must be a string column, got {kind}")
    encoded = pc.dictionary_encode(table.column("user_id").combine_chunks())
    users = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    n_users = len(encoded.dictionary)
    if not need_time:  # the random protocols order by a random key, never by time
        return _Rows(users=users, times=np.zeros(len(users), np.int64), n_users=n_users,
                     per_second=1)  # fmt: skip
    timestamp = table.column("timestamp")
    if not pa.types.is_timestamp(timestamp.type):
        raise ValueError(f"column timestamp must be a timestamp type, got {timestamp.type}")
    times = np.asarray(timestamp.cast(pa.int64()).to_numpy(), dtype=np.int64)
    per_second = PER_SECOND[timestamp.type.unit]
    return _Rows(users=users, times=times, n_users=n_users, per_second=per_second)


TimeStatus = Literal["usable", "absent", "partial", "constant"]


def time_status(table: pa.Table, *, min_ordered_share: float = 0.5) -> TimeStatus:
    """Whether ``timestamp`` can order a per-user temporal split.

    ``absent``: no column or every value null; ``partial``: some rows null (their order is
    unknown); ``constant``: fewer than ``min_ordered_share`` of the users with 2+ rows have
    rows at more than one time (one load date stamped on everything, where "the latest
    rows" would only be the file's row order); otherwise ``usable``.
    """
    if "timestamp" not in table.column_names or table.num_rows == 0:
        return "absent"
    column = table.column("timestamp")
    if column.null_count == len(column):
        return "absent"
    if column.null_count:
        return "partial"
    users = pc.dictionary_encode(table.column("user_id").combine_chunks()).indices
    pairs = pa.table({"u": users, "t": column.cast(pa.int64())})
    per_user = pairs.group_by("u").aggregate([("t", "count"), ("t", "count_distinct")])
    rows = per_user.column("t_count").to_numpy()
    distinct = per_user.column("t_count_distinct").to_numpy()
    several = rows >= 2
    if not several.any():
        return "usable"
    ordered = float((distinct[several] > 1).mean())
    return "usable" if ordered >= min_ordered_share else "constant"


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is read as UTC, like the column."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _positions(users: np.ndarray, key: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its 0-based position within its user's rows ordered by ``key`` then row
    order, and its user's row count."""
    order = np.lexsort((np.arange(len(users)), key, users))
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.empty(len(users), dtype=np.int64)
    position[order] = np.arange(len(users)) - starts[users[order]]
    return position, counts[users]


def _n_test(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Rows held out of a user with ``counts`` rows: round-half-up(fraction * n), kept in
    [1, n - 1] so every tested user has history and a target."""
    return np.clip(np.floor(counts * fraction + 0.5).astype(np.int64), 1, counts - 1)


def _tail_mask(
    rows: _Rows, key: np.ndarray, n_test_of: Callable[[np.ndarray], np.ndarray], minimum: int
) -> np.ndarray:
    """True for rows in the last ``n_test_of(count)`` of their user's rows by ``key``;
    users with fewer than ``minimum`` rows get none."""
    position, counts = _positions(rows.users, key, rows.n_users)
    eligible = counts >= minimum
    n_test = np.where(eligible, n_test_of(np.maximum(counts, 2)), 0)
    return position >= counts - n_test


def _order_key(rows: _Rows, order: Order, rng: np.random.Generator) -> np.ndarray:
    if order == "time":
        return rows.times
    if order == "random":
        return rng.random(len(rows.times))
    raise ValueError(f"order must be 'time' or 'random', got {order!r}")


def _empty(table: pa.Table) -> pa.Table:
    return table.slice(0, 0)


def _split(
    table: pa.Table,
    test_mask: np.ndarray,
    protocol: str,
    options: dict[str, Any],
    fold_in_mask: np.ndarray | None = None,
) -> Split:
    train_mask = ~test_mask if fold_in_mask is None else ~(test_mask | fold_in_mask)
    if not test_mask.any():
        minimum = options.get("min_user_interactions")
        hint = f" (no user has >= {minimum} interactions)" if minimum is not None else ""
        raise ValueError(f"{protocol} split leaves the test set empty{hint}")
    if not train_mask.any():
        raise ValueError(f"{protocol} split leaves the training set empty")
    fold_in = _empty(table) if fold_in_mask is None else table.filter(pa.array(fold_in_mask))
    return Split(
        train=table.filter(pa.array(train_mask)),
        test=table.filter(pa.array(test_mask)),
        fold_in=fold_in,
        protocol=protocol,
        options=dict(options),
    )


def global_temporal(
    table: pa.Table, *, at: datetime | None = None, quantile: float | None = None
) -> Split:
    """Everything before one cut time trains, everything at or after it tests.

    Give ``at`` (a datetime) or ``quantile`` (of the rows' times, default 0.8 when neither
    is given). This is the protocol closest to deployment: no interaction from the future
    leaks into training. The minimum per user does not apply (moving a user's late rows
    into train would leak); users or items first seen after the cut stay in test as
    cold-start cases, and ``relevance_matrix`` drops unknown items.
    """
    if at is not None and quantile is not None:
        raise ValueError("give either at= or quantile= for global-temporal, not both")
    rows = _rows(table)
    if at is not None:
        if not isinstance(at, datetime):
            raise ValueError(f"at must be a datetime, got {at!r}")
        cut = rows.to_unit(_micros(at))
        options: dict[str, Any] = {"at": at.isoformat()}
    else:
        q = _check_fraction("quantile", 0.8 if quantile is None else quantile)
        position = min(int(np.floor(q * len(rows.times))), len(rows.times) - 1)
        cut = int(np.partition(rows.times, position)[position])
        options = {"quantile": q, "at": rows.to_datetime(cut).isoformat()}
    return _split(table, rows.times >= cut, "global-temporal", options)


def user_temporal(
    table: pa.Table,
    *,
    fraction: float = 0.2,
    min_user_interactions: int = DEFAULT_MIN_USER_INTERACTIONS,
) -> Split:
    """Each user's last ``fraction`` of interactions by time test, the rest train.

    A user with n rows gives round-half-up(fraction * n) rows to test, at least 1 and at
    most n - 1. Ties in time go by row order.
    """
    fraction = _check_fraction("fraction", fraction)
    minimum = _check_min_interactions(min_user_interactions)
    rows = _rows(table)
    mask = _tail_mask(rows, rows.times, lambda n: _n_test(n, fraction), minimum)
    options = {"fraction": fraction, "min_user_interactions": minimum}
    return _split(table, mask, "user-temporal", options)


def leave_last_one(
    table: pa.Table, *, min_user_interactions: int = DEFAULT_MIN_USER_INTERACTIONS
) -> Split:
    """Each user's single latest interaction tests (ties: the later row), the rest train."""
    minimum = _check_min_interactions(min_user_interactions)
    rows = _rows(table)
    mask = _tail_mask(rows, rows.times, np.ones_like, minimum)
    return _split(table, mask, "leave-last-one", {"min_user_interactions": minimum})


def random_holdout(
    table: pa.Table,
    *,
    fraction: float = 0.2,
    random_state: int | None = 0,
    min_user_interactions: int = DEFAULT_MIN_USER_INTERACTIONS,
) -> Split:
    """A random ``fraction`` of each user's interactions tests (same count rule as
    ``user_temporal``); ignores time, so it measures fit rather than forecasting."""
    fraction = _check_fraction("fraction", fraction)
    minimum = _check_min_interactions(min_user_interactions)
    rows = _rows(table, need_time=False)
    key = np.random.default_rng(random_state).random(len(rows.times))
    mask = _tail_mask(rows, key, lambda n: _n_test(n, fraction), minimum)
    options = {
        "fraction": fraction,
        "random_state": random_state,
        "min_user_interactions": minimum,
    }
    return _split(table, mask, "random-holdout", options)


def strong_generalization(
    table: pa.Table,
    *,
    user_fraction: float = 0.2,
    test_fraction: float = 0.2,
    order: Order = "time",
    random_state: int | None = 0,
    min_user_interactions: int = DEFAULT_MIN_USER_INTERACTIONS,
) -> Split:
    """Hold out whole users: the model never trains on them.

    ``user_fraction`` of the users with at least ``min_user_interactions`` rows (rounded,
    at least one) are held out, chosen with ``random_state``. Each held-out user's rows are
    split like ``user_temporal`` (``order="time"``) or ``random_holdout``
    (``order="random"``) with ``test_fraction``: the first part is ``fold_in`` (history
    given at recommendation time), the rest ``test``. All other users' rows train.
    """
    user_fraction = _check_fraction("user_fraction", user_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    minimum = _check_min_interactions(min_user_interactions)
    if order not in ("time", "random"):
        raise ValueError(f"order must be 'time' or 'random', got {order!r}")
    rows = _rows(table, need_time=order == "time")
    rng = np.random.default_rng(random_state)
    counts = np.bincount(rows.users, minlength=rows.n_users)
    eligible = np.flatnonzero(counts >= minimum)
    options: dict[str, Any] = {
        "user_fraction": user_fraction,
        "test_fraction": test_fraction,
        "order": order,
        "random_state": random_state,
        "min_user_interactions": minimum,
    }
    if len(eligible) == 0:
        raise ValueError(
            f"strong-generalization split leaves the test set empty "
            f"(no user has >= {minimum} interactions)"
        )
    n_held = max(1, int(np.floor(user_fraction * len(eligible) + 0.5)))
    held = np.zeros(rows.n_users, dtype=bool)
    held[rng.choice(eligible, size=n_held, replace=False)] = True
    key = _order_key(rows, order, rng)
    tail = _tail_mask(rows, key, lambda n: _n_test(n, test_fraction), minimum)
    in_held = held[rows.users]
    return _split(
        table,
        in_held & tail,
        "strong-generalization",
        options,
        fold_in_mask=in_held & ~tail,
    )


Splitter = Callable[..., Split]

PROTOCOLS: dict[str, Splitter] = {
    "global-temporal": global_temporal,
    "user-temporal": user_temporal,
    "leave-last-one": leave_last_one,
    "random-holdout": random_holdout,
    "strong-generalization": strong_generalization,
}


@dataclass(frozen=True)
class ConfiguredSplitter:
    """A protocol with its options bound: call it on a table; ``name`` and ``options`` go
    into reports so a result names exactly what produced it."""

    name: str
    options: Mapping[str, Any]

    def __call__(self, table: pa.Table) -> Split:
        return PROTOCOLS[self.name](table, **self.options)


def make_splitter(name: str, **options: Any) -> ConfiguredSplitter:
    """The splitter registered as ``name``, with ``options`` checked now rather than at the
    first call (an unknown protocol or option is a ``ValueError``)."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    signature = inspect.signature(PROTOCOLS[name])
    accepted = [p for p in signature.parameters if p != "table"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"protocol {name} has no option(s) {', '.join(unknown)}; "
            f"it accepts {', '.join(accepted) or 'none'}"
        )
    return ConfiguredSplitter(name=name, options=dict(options))
