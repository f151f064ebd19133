"""The interaction log readers and the preference matrix builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tastebud.config import EventTypeSpec, default_event_types
from tastebud.data.interactions import InteractionsError, from_table, read_interactions_file
from tastebud.data.matrix import MatrixCache, MatrixOptions, build_matrix

DAY = 86_400


def log_of(rows: list[tuple], columns: tuple[str, ...] = ("user_id", "item_id", "event_type")):
    return from_table(pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)}))


def cell(matrix, user: str, item: str) -> float:
    return float(matrix.matrix[matrix.users.index_of(user), matrix.items.index_of(item)])


def test_event_type_weights_are_summed_per_user_and_item() -> None:
    log = log_of(
        [("a", "x", "play"), ("a", "x", "play"), ("a", "y", "purchase"), ("b", "x", "view")]
    )
    matrix = build_matrix(log)
    weights = default_event_types()
    assert cell(matrix, "a", "x") == pytest.approx(2 * weights["play"].weight)
    assert cell(matrix, "a", "y") == pytest.approx(weights["purchase"].weight)
    assert cell(matrix, "b", "x") == pytest.approx(weights["view"].weight)


def test_negative_feedback_is_kept_apart_and_never_a_preference() -> None:
    log = log_of([("a", "x", "play"), ("a", "y", "dislike"), ("b", "y", "play"), ("a", "z", "play"),
                  ("a", "z", "skip")])  # fmt: skip
    matrix = build_matrix(log)
    assert cell(matrix, "a", "y") == 0.0
    assert matrix.negatives[matrix.users.index_of("a"), matrix.items.index_of("y")] == 1.0
    # a play outweighs a skip: still a (weaker) preference
    assert 0 < cell(matrix, "a", "z") < cell(matrix, "a", "x")
    seen = matrix.seen()[matrix.users.index_of("a")].indices
    assert matrix.items.index_of("y") in seen


def test_ratings_become_preference_strength_on_their_scale() -> None:
    log = from_table(pa.table({"user_id": ["a"] * 3 + ["b"], "item_id": ["x", "y", "z", "x"],
                               "rating": [5.0, 4.0, 1.0, 3.0]}))  # fmt: skip
    options = MatrixOptions(liked_rating=0.7, unliked_rating_weight=0.5)
    matrix = build_matrix(log, options)
    assert cell(matrix, "a", "x") == pytest.approx(1.0)
    assert cell(matrix, "a", "y") == pytest.approx(0.8)
    assert cell(matrix, "a", "z") == pytest.approx(0.5 * 0.2)
    assert cell(matrix, "b", "x") == pytest.approx(0.5 * 0.6)
    negative = build_matrix(log, MatrixOptions(unliked_rating_weight=-1.0))
    assert cell(negative, "a", "z") == 0.0 and negative.negatives.nnz == 2


def test_time_decay_halves_weight_every_half_life() -> None:
    now = 1_700_000_000
    log = from_table(pa.table({
        "user_id": ["a", "a", "b"], "item_id": ["old", "new", "new"], "event_type": ["play"] * 3,
        "timestamp": [now - 10 * DAY, now, now]}))  # fmt: skip
    matrix = build_matrix(log, MatrixOptions(half_life_days=10))
    assert cell(matrix, "a", "old") == pytest.approx(0.5 * cell(matrix, "a", "new"), rel=1e-4)


def test_confidence_transforms() -> None:
    log = log_of([("a", "x", "purchase"), ("b", "x", "play")])
    binary = build_matrix(log, MatrixOptions(transform="binary"))
    assert set(binary.matrix.data) == {1.0}
    logged = build_matrix(log, MatrixOptions(transform="log", alpha=2.0))
    assert cell(logged, "a", "x") == pytest.approx(1 + 2 * np.log1p(5.0), rel=1e-5)


def test_counts_saturate_and_normalise_to_one_typical_interaction() -> None:
    """Play counts: one play keeps its weight, 100 plays count as 1 + ln(100), not 100; with
    ``normalize`` the median confidence is 1, so plain pairs become plain binary EASE input."""
    counts = pa.table({"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "x", "y"],
                       "weight": [1.0, 100.0, 0.5, 3.0]})  # fmt: skip
    saturated = build_matrix(from_table(counts), MatrixOptions(transform="saturate"))
    assert cell(saturated, "a", "x") == 1.0 and cell(saturated, "b", "x") == 0.5
    assert cell(saturated, "a", "y") == pytest.approx(1 + np.log(100.0), rel=1e-6)
    normal = build_matrix(from_table(counts), MatrixOptions(transform="saturate", normalize=True))
    assert np.median(normal.matrix.data) == pytest.approx(1.0)
    pairs = log_of([("a", "x"), ("a", "y"), ("b", "x")], ("user_id", "item_id"))
    plain = build_matrix(pairs, MatrixOptions(transform="saturate", normalize=True))
    assert set(plain.matrix.data) == {1.0}  # "view" pairs weigh 0.5 before normalising


def test_bm25_weighs_down_popular_items_and_long_histories() -> None:
    rows = [(f"u{u}", "everyone", "play") for u in range(6)] + [("u0", "rare", "play")]
    rows += [("u1", f"long{i}", "play") for i in range(8)] + [("u1", "rare", "play")]
    matrix = build_matrix(log_of(rows), MatrixOptions(transform="bm25", bm25_k1=1.2))
    assert cell(matrix, "u0", "rare") > cell(matrix, "u0", "everyone") > 0  # idf, floored
    assert cell(matrix, "u0", "rare") > cell(matrix, "u1", "rare")  # longer history


def test_minimum_counts_filter_rare_items_then_users() -> None:
    rows = [(f"u{u}", "common", "play") for u in range(5)]
    rows += [("u0", "rare", "play"), ("loner", "rare2", "play")]
    matrix = build_matrix(log_of(rows), MatrixOptions(min_item_interactions=2))
    assert list(matrix.items.ids.to_pylist()) == ["common"]
    assert "loner" not in matrix.users
    assert matrix.stats["items_below_minimum"] == 2 and matrix.stats["users_below_minimum"] == 1


def test_popularity_decays_per_day() -> None:
    now = 1_700_000_000
    log = from_table(pa.table({
        "user_id": ["a", "b", "c"], "item_id": ["old", "old", "new"], "event_type": ["play"] * 3,
        "timestamp": [now - 20 * DAY, now - 20 * DAY, now]}))  # fmt: skip
    matrix = build_matrix(log)
    plain = dict(zip(matrix.items.ids.to_pylist(), matrix.item_popularity(), strict=True))
    assert plain == {"new": 1.0, "old": 2.0}
    decayed = dict(zip(matrix.items.ids.to_pylist(), matrix.item_popularity(5.0), strict=True))
    assert decayed["new"] > decayed["old"]


def test_unknown_event_types_and_empty_data_are_clear_errors() -> None:
    with pytest.raises(InteractionsError, match="unknown event types"):
        build_matrix(log_of([("a", "x", "teleport")]))
    with pytest.raises(InteractionsError, match="empty"):
        build_matrix(log_of([]))
    with pytest.raises(InteractionsError, match="no positive signal"):
        build_matrix(log_of([("a", "x", "dislike")]))
    custom = {**default_event_types(), "teleport": EventTypeSpec(weight=2.0)}
    assert cell(build_matrix(log_of([("a", "x", "teleport")]), None, custom), "a", "x") == 2.0


def test_files_drop_bad_rows_and_name_ignored_columns(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user_id,item_id,weight,timestamp,colour\n"
        "a,x,1.5,2024-01-01T00:00:00Z,red\n"
        ",x,1,2024-01-01T00:00:00Z,red\n"
        "b,y,nan,2024-01-01T00:00:00Z,blue\n"
        "c,z,2,not-a-time,blue\n"
        "d,z,2,1704067200,green\n"
        "e,z,1,,green\n"
    )
    log = read_interactions_file(path)
    assert log.table.column("user_id").to_pylist() == ["a", "d", "e"]  # e: no time, kept
    assert log.dropped == {"missing_user_id": 1, "weight_not_finite": 1, "timestamp_invalid": 1}
    assert log.ignored_columns == ["colour"]
    assert log.table.column("weight").to_pylist() == [1.5, 2.0, 1.0]
    assert log.table.column("timestamp")[2].as_py() is None


def test_a_row_with_the_wrong_number_of_fields_is_dropped_and_the_good_rows_kept(
    tmp_path: Path,
) -> None:
    """``train`` and ``evaluate`` refused the whole file on one such row ("CSV parse error:
    Expected 4 columns, got 5"), losing every good row (the bad-input audit)."""
    path = tmp_path / "ratings.csv"
    path.write_text(
        "user_id,item_id,rating,timestamp\n"
        "a,x,4,1704067200\n"
        "b,y,3,1704067200,extra\n"
        "c\n"
        "d,z,5,1704067200\n"
    )
    log = read_interactions_file(path)
    assert log.table.column("user_id").to_pylist() == ["a", "d"]
    assert log.dropped == {"malformed_row": 2}


def test_a_row_that_is_not_utf8_is_dropped_and_the_good_rows_kept(tmp_path: Path) -> None:
    """One byte that is not UTF-8 refused the whole file ("CSV conversion error to string:
    invalid UTF8 data"), losing every good row (the bad-input audit)."""
    path = tmp_path / "ratings.csv"
    path.write_bytes(
        b"user_id,item_id,rating,event_type\n"
        b"a,x,4,rating\n"
        b"b,y\xff,3,rating\n"
        b"c,z,5,rat\xfeing\n"
        b"d,z,2,rating\n"
    )
    log = read_interactions_file(path)
    assert log.table.column("user_id").to_pylist() == ["a", "d"]
    assert log.dropped == {"invalid_utf8": 2}


def test_a_header_split_on_another_separator_is_named(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("user_id;item_id;rating\nu1;i1;4\n")
    with pytest.raises(InteractionsError, match="its header holds ';'"):
        read_interactions_file(path)


def test_files_without_id_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("customer,product\n1,2\n")
    with pytest.raises(InteractionsError, match="no user_id and no item_id"):
        read_interactions_file(path)
    with pytest.raises(InteractionsError, match="does not exist"):
        read_interactions_file(tmp_path / "missing.csv")


def test_parquet_files_read_the_same(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pa.table({"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": [4.0, 2.0]})
    pq.write_table(table, tmp_path / "i.parquet")
    log = read_interactions_file(tmp_path / "i.parquet")
    assert log.table.column("event_type").to_pylist() == ["rating", "rating"]
    assert len(log.snapshot) == 16


def test_cache_returns_the_same_matrix_without_rebuilding(tmp_path: Path) -> None:
    log = log_of([("a", "x", "play"), ("b", "y", "like")])
    cache = MatrixCache(tmp_path)
    first = cache.get_or_build(log, MatrixOptions())
    entries = list(tmp_path.iterdir())
    second = cache.get_or_build(log, MatrixOptions())
    assert list(tmp_path.iterdir()) == entries and len(entries) == 1
    assert (first.matrix != second.matrix).nnz == 0 and first.users == second.users
    cache.get_or_build(log, MatrixOptions(transform="binary"))
    assert len(list(tmp_path.iterdir())) == 2


def test_interactions_without_weight_still_count_as_seen() -> None:
    """A pair whose weights sum to zero is no preference, but it is never recommended back."""
    log = from_table(pa.table({
        "user_id": ["a", "a", "a", "b", "b"], "item_id": ["x", "y", "y", "x", "z"],
        "weight": [1.0, 1.0, -1.0, 1.0, 0.0]}))  # fmt: skip
    matrix = build_matrix(log)
    assert cell(matrix, "a", "y") == 0.0 and cell(matrix, "b", "z") == 0.0
    seen = matrix.seen()
    assert seen[matrix.users.index_of("a"), matrix.items.index_of("y")] != 0
    assert seen[matrix.users.index_of("b"), matrix.items.index_of("z")] != 0


def test_cache_keeps_only_the_most_recently_used_entries(tmp_path: Path) -> None:
    log = log_of([("a", "x", "play"), ("b", "y", "like")])
    cache = MatrixCache(tmp_path, keep=2)
    for alpha in (1.0, 2.0, 3.0):
        cache.get_or_build(log, MatrixOptions(transform="log", alpha=alpha))
    kept = {path.name for path in tmp_path.iterdir()}
    assert len(kept) == 2
    assert (
        MatrixCache.key(log, MatrixOptions(transform="log", alpha=1.0), default_event_types())
        not in kept
    )
