"""Splitters: hand-checked cases, invariants on random tables, bad input, the registry."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from evaluation_tables import T0, interactions, random_interactions
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.evaluation.splitting import (
    PROTOCOLS,
    Split,
    global_temporal,
    leave_last_one,
    make_splitter,
    random_holdout,
    strong_generalization,
    time_status,
    user_temporal,
)


def rows_of(table: pa.Table) -> list[int]:
    return table.column("row").to_pylist()


def items_of(table: pa.Table, user: str) -> set[str]:
    users = table.column("user_id").to_pylist()
    return {i for u, i in zip(users, table.column("item_id").to_pylist(), strict=True) if u == user}


def assert_partition(split: Split, table: pa.Table) -> None:
    parts = [*rows_of(split.train), *rows_of(split.test), *rows_of(split.fold_in)]
    assert sorted(parts) == list(range(table.num_rows))
    for part in (split.train, split.test, split.fold_in):
        assert part.schema == table.schema
        assert rows_of(part) == sorted(rows_of(part))  # input order kept


def test_user_temporal_takes_the_last_fraction_with_ties_by_row_order(small: pa.Table) -> None:
    split = user_temporal(small, fraction=0.2)
    assert_partition(split, small)
    assert items_of(split.test, "u1") == {"a"}
    assert items_of(split.test, "u2") == {"a"}  # 0.2 * 2 rounds to 0, raised to 1
    assert items_of(split.train, "u3") == {"z"} and items_of(split.test, "u3") == set()
    assert split.fold_in.num_rows == 0 and split.protocol == "user-temporal"
    # 0.3 * 5 = 1.5 -> 2 rows: c and d are tied at t=3; d is the later row, so it tests.
    assert items_of(user_temporal(small, fraction=0.3).test, "u1") == {"d", "a"}
    assert items_of(user_temporal(small, fraction=0.5).test, "u1") == {"c", "d", "a"}


def test_min_user_interactions_keeps_small_users_in_train(small: pa.Table) -> None:
    split = user_temporal(small, fraction=0.2, min_user_interactions=3)
    assert items_of(split.test, "u2") == set() and items_of(split.train, "u2") == {"a", "b"}
    assert items_of(split.test, "u1") == {"a"}


def test_leave_last_one(small: pa.Table) -> None:
    split = leave_last_one(small)
    assert_partition(split, small)
    assert sorted(rows_of(split.test)) == [0, 1]  # u1's "a" at t=5, u2's "a" at t=1


def test_global_temporal_at_and_quantile(small: pa.Table) -> None:
    at = global_temporal(small, at=T0 + timedelta(minutes=3))
    assert_partition(at, small)
    assert rows_of(at.test) == [0, 3, 4, 5]
    by_quantile = global_temporal(small, quantile=0.5)  # times sorted: 0 1 1 2 | 3 3 5 9
    assert rows_of(by_quantile.test) == [0, 3, 4, 5]
    assert by_quantile.options["quantile"] == 0.5
    naive = global_temporal(small, at=(T0 + timedelta(minutes=3)).replace(tzinfo=None))
    assert rows_of(naive.test) == [0, 3, 4, 5]
    with pytest.raises(ValueError, match="not both"):
        global_temporal(small, at=T0, quantile=0.5)
    with pytest.raises(ValueError, match="training set empty"):
        global_temporal(small, at=T0)


@pytest.mark.parametrize("unit", ["s", "ms", "ns"])
def test_other_timestamp_units_and_naive_times(unit: str, small: pa.Table) -> None:
    column = small.column("timestamp").cast(pa.timestamp(unit))  # tz-naive, read as UTC
    table = small.set_column(2, "timestamp", column)
    assert rows_of(global_temporal(table, at=T0 + timedelta(minutes=3)).test) == [0, 3, 4, 5]
    by_quantile = global_temporal(table, quantile=0.5)
    assert by_quantile.options["at"] == (T0 + timedelta(minutes=3)).isoformat()
    assert items_of(user_temporal(table, fraction=0.3).test, "u1") == {"d", "a"}


def test_random_holdout_is_seeded() -> None:
    table = random_interactions(2_000, 50, 100, seed=1)
    first = random_holdout(table, fraction=0.25, random_state=7)
    again = random_holdout(table, fraction=0.25, random_state=7)
    other = random_holdout(table, fraction=0.25, random_state=8)
    assert_partition(first, table)
    assert rows_of(first.test) == rows_of(again.test)
    assert rows_of(first.test) != rows_of(other.test)
    counts = defaultdict(int)
    for user in table.column("user_id").to_pylist():
        counts[user] += 1
    tested = defaultdict(int)
    for user in first.test.column("user_id").to_pylist():
        tested[user] += 1
    for user, n in counts.items():
        expected = min(max(math.floor(n * 0.25 + 0.5), 1), n - 1) if n >= 2 else 0
        assert tested[user] == expected


def test_strong_generalization_holds_out_whole_users() -> None:
    table = random_interactions(3_000, 100, 200, seed=2)
    split = strong_generalization(table, user_fraction=0.3, test_fraction=0.25, random_state=3)
    assert_partition(split, table)
    train_users = set(split.train.column("user_id").to_pylist())
    held = set(split.test.column("user_id").to_pylist())
    assert held == set(split.fold_in.column("user_id").to_pylist())
    assert not held & train_users
    eligible = sum(1 for n in _counts(table).values() if n >= 2)
    assert len(held) == math.floor(0.3 * eligible + 0.5)
    times_in = _times_by_user(split.fold_in)
    for user, times in _times_by_user(split.test).items():
        assert min(times) >= max(times_in[user])  # fold-in precedes test in time
    randomly = strong_generalization(table, order="random", random_state=3)
    assert_partition(randomly, table)
    assert strong_generalization(table, random_state=3).test.equals(
        strong_generalization(table, random_state=3).test
    )


def _counts(table: pa.Table) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for user in table.column("user_id").to_pylist():
        counts[user] += 1
    return counts


def _times_by_user(table: pa.Table) -> dict[str, list[int]]:
    times: dict[str, list[int]] = defaultdict(list)
    micros = table.column("timestamp").cast(pa.int64()).to_pylist()
    for user, t in zip(table.column("user_id").to_pylist(), micros, strict=True):
        times[user].append(t)
    return times


def reference_user_temporal(table: pa.Table, fraction: float, minimum: int) -> set[int]:
    """Row ids a per-user loop puts in test: sort each user's rows by (time, row)."""
    by_user: dict[str, list[tuple[int, int]]] = defaultdict(list)
    micros = table.column("timestamp").cast(pa.int64()).to_pylist()
    for user, t, row in zip(
        table.column("user_id").to_pylist(), micros, rows_of(table), strict=True
    ):
        by_user[user].append((t, row))
    test: set[int] = set()
    for rows in by_user.values():
        n = len(rows)
        if n < minimum:
            continue
        n_test = min(max(math.floor(n * fraction + 0.5), 1), n - 1)
        test.update(row for _, row in sorted(rows)[n - n_test :])
    return test


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(2, 120),
    n_users=st.integers(1, 12),
    seed=st.integers(0, 10_000),
    fraction=st.floats(0.05, 0.95),
    minimum=st.integers(2, 5),
)
def test_user_temporal_matches_a_per_user_loop(
    n_rows: int, n_users: int, seed: int, fraction: float, minimum: int
) -> None:
    table = random_interactions(n_rows, n_users, 30, seed)
    expected = reference_user_temporal(table, fraction, minimum)
    if not expected:
        with pytest.raises(ValueError, match="test set empty"):
            user_temporal(table, fraction=fraction, min_user_interactions=minimum)
        return
    split = user_temporal(table, fraction=fraction, min_user_interactions=minimum)
    assert set(rows_of(split.test)) == expected
    assert_partition(split, table)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_bad_input_is_a_clear_value_error(name: str, small: pa.Table) -> None:
    splitter = make_splitter(name)
    with pytest.raises(ValueError, match="empty"):
        splitter(small.slice(0, 0))
    if name != "random-holdout":  # the one protocol that never reads time (tested below)
        with pytest.raises(ValueError, match=r"missing column.*timestamp"):
            splitter(small.drop_columns(["timestamp"]))
        with pytest.raises(ValueError, match="timestamp type"):
            splitter(small.set_column(2, "timestamp", pa.array(range(small.num_rows))))
    with_null = small.set_column(0, "user_id", pa.array([None, *["u"] * 7], pa.string()))
    with pytest.raises(ValueError, match="null"):
        splitter(with_null)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, float("nan")])
def test_fractions_outside_zero_one_are_refused(fraction: float, small: pa.Table) -> None:
    for call in (
        lambda: user_temporal(small, fraction=fraction),
        lambda: random_holdout(small, fraction=fraction),
        lambda: strong_generalization(small, user_fraction=fraction),
        lambda: strong_generalization(small, test_fraction=fraction),
        lambda: global_temporal(small, quantile=fraction),
    ):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            call()
    with pytest.raises(ValueError, match="min_user_interactions"):
        leave_last_one(small, min_user_interactions=1)


def test_nobody_to_test_is_refused() -> None:
    lonely = interactions([("u1", "a", 0), ("u2", "b", 1)])
    for name in ("user-temporal", "leave-last-one", "random-holdout", "strong-generalization"):
        with pytest.raises(ValueError, match="test set empty"):
            make_splitter(name)(lonely)
    one_user = interactions([("u1", "a", 0), ("u1", "b", 1), ("u1", "c", 2)])
    with pytest.raises(ValueError, match="training set empty"):
        strong_generalization(one_user)


def test_registry_binds_and_checks_options(small: pa.Table) -> None:
    assert set(PROTOCOLS) == {
        "global-temporal",
        "user-temporal",
        "leave-last-one",
        "random-holdout",
        "strong-generalization",
    }
    splitter = make_splitter("user-temporal", fraction=0.5)
    assert splitter.name == "user-temporal" and splitter.options == {"fraction": 0.5}
    assert items_of(splitter(small).test, "u1") == {"c", "d", "a"}
    with pytest.raises(ValueError, match="unknown protocol 'nope'"):
        make_splitter("nope")
    with pytest.raises(ValueError, match=r"no option.*fractoin"):
        make_splitter("user-temporal", fractoin=0.2)


def test_extra_columns_and_summary(small: pa.Table) -> None:
    split = user_temporal(small)
    assert split.train.column_names == small.column_names
    summary = split.summary()
    assert summary["train_rows"] + summary["test_rows"] == small.num_rows
    assert summary["test_users"] == 2 and summary["fold_in_rows"] == 0


def test_a_million_rows_split_in_seconds() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    users = pa.array(np.char.add("u", rng.integers(0, 50_000, n).astype(str)))
    table = pa.table(
        {
            "user_id": users,
            "item_id": pa.array(np.char.add("i", rng.integers(0, 10_000, n).astype(str))),
            "timestamp": pa.array(rng.integers(0, 10**15, n), pa.timestamp("us", tz="UTC")),
        }
    )
    started = time.perf_counter()
    split = user_temporal(table)
    assert time.perf_counter() - started < 10
    assert split.train.num_rows + split.test.num_rows == n


def test_random_protocols_split_data_without_time() -> None:
    """Plain pairs and play counts carry no timestamp: the random protocols need none."""
    table = random_interactions(300, 30, 40, seed=3)
    stamped = random_holdout(table, random_state=5)
    for without in (
        table.drop_columns(["timestamp"]),
        table.set_column(
            table.column_names.index("timestamp"),
            "timestamp",
            pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC")),
        ),
    ):
        split = random_holdout(without, random_state=5)
        assert rows_of(split.test) == rows_of(stamped.test)  # time played no part
        strong = strong_generalization(without, order="random", random_state=1)
        assert strong.test.num_rows and strong.fold_in.num_rows
        with pytest.raises(ValueError, match="timestamp"):
            user_temporal(without)


def test_time_status_names_what_is_wrong_with_the_times() -> None:
    base = [("u1", "a", 0), ("u1", "b", 1), ("u2", "a", 2), ("u2", "c", 3), ("u3", "d", 4)]
    table = interactions(base)
    assert time_status(table) == "usable"
    assert time_status(table.drop_columns(["timestamp"])) == "absent"
    kind = table.schema.field("timestamp").type
    position = table.column_names.index("timestamp")
    nulls = table.set_column(position, "timestamp", pa.nulls(table.num_rows, kind))
    assert time_status(nulls) == "absent"
    some = pa.array([T0, None, T0, T0, T0], kind)
    assert time_status(table.set_column(position, "timestamp", some)) == "partial"
    same = pa.array([T0] * 5, kind)
    assert time_status(table.set_column(position, "timestamp", same)) == "constant"
    # one user ordered, one stamped at a single moment: half the users are enough
    half = pa.array([T0, T0 + timedelta(hours=1), T0, T0, T0], kind)
    assert time_status(table.set_column(position, "timestamp", half)) == "usable"
