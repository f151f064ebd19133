"""The exposures side of the metrics: who is in which variant, and what each was served.

Two reads of the exposure log. The first (DuckDB, scalar columns only) finds each user's
variant and first exposure from the counted exposures (``experiment`` = the key, a variant
of the definition); a user seen in two variants is a bug, counted and left out. The second
goes through the lists chunk by chunk (a Parquet row group at a time, bounded memory) and
keeps, for the counted users, their counted exposures and their exposures in the pre-period
(the ``pre_period_days`` before their first), each reduced to a row of table ``xp``: user,
time, list id, items, latency and diversity.

The lists themselves are read in numpy: item ids come dictionary-encoded from Parquet, so
each distinct id is looked up once per row group, and a list's diversity (the share of
distinct creators among its items; an item with no known creator is its own) is counted
without unnesting 100M items into SQL (docs/benchmarks.md, experiment analysis).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.experiments.sources import READ_ERRORS, SourceError

PAD_MAX = 64  # lists up to this long are deduplicated in a padded grid, longer by sorting
PAD_SENTINEL = np.iinfo(np.int32).max
COLUMNS = ["list_id", "served_at", "experiment", "variant", "user_id", "session_id"]

SEEN = """
CREATE OR REPLACE TEMP TABLE seen AS
SELECT coalesce(user_id, session_id) AS unit, min(variant) AS variant,
       count(DISTINCT variant) AS variants, min(epoch_us(served_at)) AS first
FROM {source}
WHERE experiment = $key AND list_contains($variants, variant)
  AND coalesce(user_id, session_id) IS NOT NULL
  AND served_at >= $start AND served_at < $stop
GROUP BY ALL
"""
USERS = """
CREATE OR REPLACE TEMP TABLE users AS
SELECT unit, variant, first, (list_position($variants, variant) - 1)::INTEGER AS vi,
       (row_number() OVER (ORDER BY list_position($variants, variant), unit) - 1)::INTEGER
           AS uid
FROM seen WHERE variants = 1
"""
XP = """
CREATE OR REPLACE TEMP TABLE xp (
    uid INTEGER, ts BIGINT, list_id VARCHAR, items INTEGER, latency_ms DOUBLE,
    diversity DOUBLE, post BOOLEAN)
"""
# A chunk's rows that matter: the counted users' counted exposures and pre-period ones.
MATCH = """
SELECT m.r, u.uid, u.vi,
       (m.experiment IS NOT DISTINCT FROM $key AND m.variant IS NOT DISTINCT FROM u.variant
        AND m.served_at >= $start AND m.served_at < $stop) AS post
FROM chunk_meta m JOIN users u ON u.unit = coalesce(m.user_id, m.session_id)
WHERE post OR (epoch_us(m.served_at) >= u.first - $pre AND epoch_us(m.served_at) < u.first)
ORDER BY m.r
"""


@dataclass
class Assignment:
    """Users per variant (uids are contiguous per variant, in the definition's order)."""

    variants: list[str]
    users: list[int]
    multiple: int
    first_us: int | None

    @property
    def total(self) -> int:
        return sum(self.users)


def assign(
    connection: duckdb.DuckDBPyConnection,
    source_sql: str,
    key: str,
    variants: list[str],
    start: datetime,
    stop: datetime,
) -> Assignment:
    """Table ``users`` (unit, variant, first, vi, uid) from the counted exposures."""
    bounds = {"key": key, "variants": variants, "start": start, "stop": stop}
    try:
        connection.execute(SEEN.format(source=source_sql), bounds)
    except READ_ERRORS as error:
        raise SourceError(f"cannot read the exposures: {error}") from None
    connection.execute(USERS, {"variants": variants})
    (multiple,) = connection.execute("SELECT count(*) FROM seen WHERE variants > 1").fetchone()
    counts = dict(connection.execute("SELECT vi, count(*) FROM users GROUP BY vi").fetchall())
    (first,) = connection.execute("SELECT min(first) FROM users").fetchone()
    users = [int(counts.get(index, 0)) for index in range(len(variants))]
    return Assignment(variants, users, int(multiple), None if first is None else int(first))


@dataclass
class ItemCodes:
    """Item ids to dense codes, and each code's creator code (an item with no known
    creator gets one of its own, negative, so it never equals another's)."""

    creators: Mapping[str, str]
    index: dict[str, int] = field(default_factory=dict)
    creator_index: dict[str, int] = field(default_factory=dict)
    creator_codes: list[int] = field(default_factory=list)
    _creator_array: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def codes(self, values: Iterable[str]) -> np.ndarray:
        out = []
        for value in values:
            code = self.index.get(value)
            if code is None:
                code = self.index[value] = len(self.index)
                creator = self.creators.get(value)
                if creator is None:
                    self.creator_codes.append(-1 - code)
                else:
                    self.creator_codes.append(
                        self.creator_index.setdefault(creator, len(self.creator_index))
                    )
            out.append(code)
        return np.asarray(out, dtype=np.int64)

    def creator_of(self, codes: np.ndarray) -> np.ndarray:
        if len(self._creator_array) != len(self.creator_codes):
            self._creator_array = np.asarray(self.creator_codes, dtype=np.int64)
        return self._creator_array[codes]


def distinct_per_row(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """How many distinct values each row (a run of ``lengths`` values) holds.

    Short rows (served lists) are laid out as a padded grid and sorted row-wise: a tenth of
    the time of comparing shifted copies, and far less than a global sort
    (docs/benchmarks.md, experiment analysis)."""
    rows = len(lengths)
    if len(codes) == 0:
        return np.zeros(rows, dtype=np.int64)
    longest = int(lengths.max())
    if longest <= PAD_MAX and codes.min() > -PAD_SENTINEL and codes.max() < PAD_SENTINEL:
        grid = np.full((rows, longest), PAD_SENTINEL, dtype=np.int32)
        grid[np.arange(longest) < lengths[:, None]] = codes
        grid.sort(axis=1)
        new = grid[:, 1:] != grid[:, :-1]
        new &= grid[:, 1:] != PAD_SENTINEL
        return new.sum(axis=1) + (grid[:, 0] != PAD_SENTINEL)
    row = np.repeat(np.arange(rows), lengths)
    order = np.lexsort((codes, row))
    codes, row = codes[order], row[order]
    first = np.r_[True, (codes[1:] != codes[:-1]) | (row[1:] != row[:-1])]
    return np.bincount(row[first], minlength=rows)


@dataclass
class ListPass:
    """What the chunk pass gathers beside ``xp``: per variant, which item codes were served."""

    variants: int
    served: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.served = [np.zeros(0, dtype=bool) for _ in range(self.variants)]

    def note(self, variant: int, items: np.ndarray, vocabulary: int) -> None:
        seen = self.served[variant]
        if len(seen) < vocabulary:
            seen = self.served[variant] = np.concatenate(
                [seen, np.zeros(vocabulary - len(seen), dtype=bool)]
            )
        seen[items] = True

    def distinct(self) -> list[int]:
        return [int(seen.sum()) for seen in self.served]


def read_lists(
    connection: duckdb.DuckDBPyConnection,
    chunks: Iterable[pa.Table],
    codes: ItemCodes,
    assignment: Assignment,
    *,
    key: str,
    start: datetime,
    stop: datetime,
    pre_us: int,
) -> ListPass:
    """Fill ``xp`` from the exposure chunks; return the items served per variant."""
    connection.execute(XP)
    gathered = ListPass(len(assignment.variants))
    params = {"key": key, "start": start, "stop": stop, "pre": pre_us}
    for chunk in chunks:
        if chunk.num_rows == 0:
            continue
        meta = chunk.select(COLUMNS).append_column("r", pa.array(np.arange(chunk.num_rows)))
        connection.register("chunk_meta", meta)
        try:
            match = connection.execute(MATCH, params).fetchnumpy()
        finally:
            connection.unregister("chunk_meta")
        if len(match["r"]):
            _keep(connection, chunk, match, codes, gathered)
    return gathered


def _keep(
    connection: duckdb.DuckDBPyConnection,
    chunk: pa.Table,
    match: dict[str, np.ndarray],
    codes: ItemCodes,
    gathered: ListPass,
) -> None:
    """Reduce the matched rows of one chunk to ``xp`` rows and note the items served."""
    rows = np.asarray(match["r"])
    post = np.asarray(match["post"], dtype=bool)
    kept = chunk.take(pa.array(rows)) if len(rows) < chunk.num_rows else chunk
    lists = kept.column("items").combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = lists.flatten()
    if not isinstance(flat.type, pa.DictionaryType):
        flat = pc.dictionary_encode(flat)
    items = codes.codes(flat.dictionary.to_pylist())[flat.indices.to_numpy(zero_copy_only=False)]
    creators = distinct_per_row(codes.creator_of(items), lengths)
    diversity = np.divide(creators, lengths, out=np.zeros(len(lengths)), where=lengths > 0)
    on_post = np.repeat(post, lengths)
    variant_of = np.repeat(np.asarray(match["vi"]), lengths)
    for index in range(gathered.variants):
        gathered.note(index, items[on_post & (variant_of == index)], len(codes.index))
    reduced = pa.table(
        {
            "uid": pa.array(np.asarray(match["uid"]), pa.int32()),
            "ts": pc.cast(kept.column("served_at"), pa.int64()),
            "list_id": kept.column("list_id"),
            "items": pa.array(lengths, pa.int32()),
            "latency_ms": kept.column("latency_ms"),
            "diversity": pa.array(diversity),
            "post": pa.array(post),
        }
    )
    connection.register("reduced", reduced)
    try:
        connection.execute("INSERT INTO xp SELECT * FROM reduced")
    finally:
        connection.unregister("reduced")


PER_USER = """
SELECT uid,
       count(*) FILTER (post) AS lists,
       coalesce(sum(items) FILTER (post), 0) AS items,
       count(*) FILTER (post AND items = 0) AS empty_lists,
       count(*) FILTER (post AND items > 0) AS nonempty_lists,
       coalesce(sum(latency_ms) FILTER (post), 0) AS latency_ms,
       coalesce(sum(diversity) FILTER (post), 0) AS diversity,
       count(*) FILTER (NOT post) AS pre_lists,
       coalesce(sum(items) FILTER (NOT post), 0) AS pre_items,
       count(*) FILTER (NOT post AND items = 0) AS pre_empty_lists,
       count(*) FILTER (NOT post AND items > 0) AS pre_nonempty_lists
FROM xp GROUP BY uid
"""


def per_user(connection: duckdb.DuckDBPyConnection, users: int) -> dict[str, np.ndarray]:
    """Each exposure aggregate per user (``pre_*``: in the pre-period), indexed by uid."""
    result = connection.execute(PER_USER).fetchnumpy()
    uid = np.asarray(result.pop("uid"))
    arrays: dict[str, np.ndarray] = {}
    for name, values in result.items():
        array = np.zeros(users)
        array[uid] = np.asarray(values, dtype=np.float64)
        arrays[name] = array
    arrays["distinct_items"] = arrays["items"]
    return arrays


def latencies(connection: duckdb.DuckDBPyConnection) -> tuple[np.ndarray, np.ndarray]:
    """Every counted exposure's latency with its uid, ordered by uid."""
    result = connection.execute(
        "SELECT uid, latency_ms FROM xp WHERE post ORDER BY uid"
    ).fetchnumpy()
    return np.asarray(result["uid"]), np.asarray(result["latency_ms"], dtype=np.float64)
