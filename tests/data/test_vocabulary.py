from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tastebud.data.vocabulary import MISSING, Vocabulary


def test_from_ids_is_sorted_and_distinct() -> None:
    vocabulary = Vocabulary.from_ids(["b", "a", "c", "a", None])  # type: ignore[list-item]
    assert vocabulary.ids.to_pylist() == ["a", "b", "c"]
    assert len(vocabulary) == 3 and "b" in vocabulary and "z" not in vocabulary


def test_lookups_both_ways_small_and_large() -> None:
    ids = [f"id{n}" for n in range(5_000)]
    vocabulary = Vocabulary(ids)
    assert vocabulary.index(["id7", "nope", "id4999"]).tolist() == [7, MISSING, 4999]
    big = pa.array([*ids[::-1], "nope"])
    positions = vocabulary.index(big)
    assert positions[:-1].tolist() == list(range(4999, -1, -1)) and positions[-1] == MISSING
    assert vocabulary.id_of(np.array([0, 42])) == ["id0", "id42"]
    assert vocabulary.index_of("id42") == 42
    with pytest.raises(IndexError):
        vocabulary.id_of([5_000])


def test_extend_keeps_existing_indices() -> None:
    old = Vocabulary(["x", "a"])
    new = old.extend(["a", "q", "b"])
    assert new.ids.to_pylist() == ["x", "a", "b", "q"]
    assert new.index(["x", "a"]).tolist() == [0, 1]
    assert old.ids.to_pylist() == ["x", "a"]


def test_duplicates_and_nulls_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="null"):
        Vocabulary(pa.array(["a", None]))


def test_save_load_and_checksum(tmp_path: Path) -> None:
    vocabulary = Vocabulary(["u1", "u2", "ü3"])
    vocabulary.save(tmp_path / "v.parquet")
    loaded = Vocabulary.load(tmp_path / "v.parquet")
    assert loaded == vocabulary and loaded.checksum() == vocabulary.checksum()
    assert Vocabulary(["u2", "u1", "ü3"]).checksum() != vocabulary.checksum()
