"""Vocabulary: the one place external string ids become dense integer indices.

Models work on indices 0..n-1; everything outside a model speaks external ids. A vocabulary
only grows (``extend`` appends), so an index, once given, keeps meaning the same id: a model
trained on an older vocabulary still lines up with a newer one's first n entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MISSING = -1
# Below this many lookups a dict beats building Arrow's hash table for the call.
SMALL_LOOKUP = 256


def _as_array(ids: Iterable[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        return ids.combine_chunks().cast(pa.string())
    if isinstance(ids, pa.Array):
        return ids.cast(pa.string())
    return pa.array(list(ids), pa.string())


class Vocabulary:
    """An ordered set of ids with O(1) lookups both ways."""

    def __init__(self, ids: Iterable[str] | pa.Array | pa.ChunkedArray = ()) -> None:
        array = _as_array(ids)
        if array.null_count:
            raise ValueError("a vocabulary cannot hold null ids")
        if len(pc.unique(array)) != len(array):
            raise ValueError("vocabulary ids must be unique; use Vocabulary.from_ids to dedupe")
        self._ids = array
        self._lookup: dict[str, int] | None = None

    @classmethod
    def from_ids(cls, ids: Iterable[str] | pa.Array | pa.ChunkedArray) -> Self:
        """The distinct ids, sorted: the same set of ids always gives the same indices."""
        distinct = pc.unique(_as_array(ids)).drop_null()
        return cls(distinct.take(pc.sort_indices(distinct)))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_id in self._dict()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._ids.equals(other._ids)

    def __hash__(self) -> int:
        return hash(self.checksum())

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids)"

    @property
    def ids(self) -> pa.Array:
        return self._ids

    def _dict(self) -> dict[str, int]:
        if self._lookup is None:
            self._lookup = {value: index for index, value in enumerate(self._ids.to_pylist())}
        return self._lookup

    def index(self, ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Indices of ``ids`` (int64), ``MISSING`` (-1) for ids not in the vocabulary."""
        if not isinstance(ids, pa.Array | pa.ChunkedArray) and len(ids) <= SMALL_LOOKUP:
            lookup = self._dict()
            return np.fromiter((lookup.get(i, MISSING) for i in ids), np.int64, len(ids))
        positions = pc.index_in(_as_array(ids), value_set=self._ids)
        return np.asarray(positions.fill_null(MISSING).to_numpy(), dtype=np.int64)

    def index_of(self, item_id: str) -> int:
        return self._dict().get(item_id, MISSING)

    def id_of(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """Ids at ``indices``; raises IndexError for indices outside the vocabulary."""
        positions = np.asarray(indices, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError("index outside the vocabulary")
        return self._ids.take(pa.array(positions)).to_pylist()

    def extend(self, ids: Iterable[str] | pa.Array | pa.ChunkedArray) -> Vocabulary:
        """A new vocabulary with the unseen ids appended (existing indices unchanged)."""
        new = pc.unique(_as_array(ids))
        unseen = new.filter(pc.invert(pc.is_in(new, value_set=self._ids)))
        unseen = unseen.take(pc.sort_indices(unseen))
        return Vocabulary(pa.concat_arrays([self._ids, unseen]))

    def checksum(self) -> str:
        digest = hashlib.sha256()
        for value in self._ids.to_pylist():
            digest.update(value.encode())
            digest.update(b"\x00")
        return digest.hexdigest()

    def save(self, path: str | Path) -> None:
        pq.write_table(pa.table({"id": self._ids}), str(path))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls(pq.read_table(str(path)).column("id"))
