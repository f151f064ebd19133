"""Readers for delimited text, CSV, JSON Lines and Parquet, yielding loosely typed Arrow
batches with the source row number of every row.

A line that cannot be parsed (undecodable bytes, wrong field count, broken JSON) becomes a
Rejection with its line number; the reader goes on with the next line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.validation import Rejection

FORMATS = ("csv", "tsv", "jsonl", "parquet")


@dataclass
class RawBatch:
    """Rows as read, before validation: string (or source-typed) columns named like the
    target fields, the 1-based source row number of each, and the lines that did not parse."""

    table: pa.Table
    row_numbers: np.ndarray
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.rejections)


def count_lines(path: Path) -> int:
    """Newlines in a file, read in 1 MiB blocks (for progress bars)."""
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def _decoded_lines(
    path: Path, encoding: str, rejections: list[Rejection], skip: int = 0
) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number <= skip:
                continue
            try:
                yield number, raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as error:
                rejections.append(
                    Rejection(number, "malformed_row", f"not valid {encoding}: {error.reason}")
                )


def _to_batch(
    columns: Sequence[str], rows: list[list[Any]], numbers: list[int], rejections: list[Rejection]
) -> RawBatch:
    arrays = {
        name: pa.array([row[index] for row in rows], pa.string())
        for index, name in enumerate(columns)
    }
    table = pa.table(arrays) if columns else pa.table({})
    return RawBatch(table, np.asarray(numbers, dtype=np.int64), rejections)


def read_delimited(
    path: Path,
    *,
    separator: str,
    columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = False,
    batch_size: int = 100_000,
) -> Iterator[RawBatch]:
    """Split lines on ``separator`` (any string, e.g. '::'); ``columns=None`` reads a header.
    ``quoted`` uses the csv module (quotes, embedded separators) for one-character separators.
    Empty fields become nulls."""
    rejections: list[Rejection] = []
    lines = _decoded_lines(path, encoding, rejections)
    if columns is None:
        try:
            _, header = next(lines)
        except StopIteration:
            return
        header = header.lstrip("\ufeff")
        columns = (
            next(csv.reader([header], delimiter=separator)) if quoted else header.split(separator)
        )
        columns = [name.strip() for name in columns]
    width = len(columns)
    rows: list[list[Any]] = []
    numbers: list[int] = []

    if quoted:
        current = [0]

        def numbered() -> Iterator[str]:
            for number, text in lines:
                current[0] = number
                yield text

        parsed: Iterator[tuple[int, list[str]]] = (
            (current[0], fields) for fields in csv.reader(numbered(), delimiter=separator)
        )
    else:
        parsed = ((number, text.split(separator)) for number, text in lines)

    for number, fields in parsed:
        if not fields or fields == [""]:
            continue  # blank line
        if len(fields) != width:
            rejections.append(
                Rejection(number, "malformed_row", f"expected {width} fields, got {len(fields)}")
            )
            continue
        rows.append([value if value != "" else None for value in fields])
        numbers.append(number)
        if len(rows) >= batch_size:
            yield _to_batch(columns, rows, numbers, _drain(rejections))
            rows, numbers = [], []
    if rows or rejections:
        yield _to_batch(columns, rows, numbers, _drain(rejections))


def _drain(rejections: list[Rejection]) -> list[Rejection]:
    """Hand over the rejections gathered so far; the line reader keeps appending to the list."""
    taken = list(rejections)
    rejections.clear()
    return taken


def _json_text(value: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold: ids stay ids (42.0 -> "42")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def read_jsonl(path: Path, *, batch_size: int = 100_000) -> Iterator[RawBatch]:
    """One JSON object per line; nested values (context, attributes) are kept as JSON text."""
    rejections: list[Rejection] = []
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, text in _decoded_lines(path, "utf-8", rejections):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as error:
            rejections.append(Rejection(number, "malformed_row", f"invalid JSON: {error.msg}"))
            continue
        if not isinstance(record, dict):
            rejections.append(Rejection(number, "malformed_row", "a line must be a JSON object"))
            continue
        records.append(record)
        numbers.append(number)
        if len(records) >= batch_size:
            yield _records_batch(records, numbers, _drain(rejections))
            records, numbers = [], []
    if records or rejections:
        yield _records_batch(records, numbers, _drain(rejections))


def _records_batch(
    records: list[dict[str, Any]], numbers: list[int], rejections: list[Rejection]
) -> RawBatch:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    rows = [[_json_text(record.get(name)) for name in names] for record in records]
    return _to_batch(list(names), rows, numbers, rejections)


def read_parquet(path: Path, *, batch_size: int = 100_000) -> Iterator[RawBatch]:
    """Parquet batches as stored (typed columns); row numbers are 1-based row indices."""
    handle = pq.ParquetFile(path)
    first = 1
    for batch in handle.iter_batches(batch_size=batch_size):
        table = pa.Table.from_batches([batch])
        yield RawBatch(table, np.arange(first, first + table.num_rows, dtype=np.int64))
        first += table.num_rows


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        name = suffix.lstrip(".")
        if name in ("csv", "txt"):
            return "csv"
        if name in ("tsv", "tab"):
            return "tsv"
        if name in ("jsonl", "ndjson", "json"):
            return "jsonl"
        if name in ("parquet", "pq"):
            return "parquet"
    raise ValueError(f"cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})")


def read_file(
    path: Path, fmt: str | None = None, *, batch_size: int = 100_000
) -> Iterator[RawBatch]:
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        return read_delimited(path, separator=",", quoted=True, batch_size=batch_size)
    if fmt == "tsv":
        return read_delimited(path, separator="\t", quoted=False, batch_size=batch_size)
    if fmt == "jsonl":
        return read_jsonl(path, batch_size=batch_size)
    if fmt == "parquet":
        return read_parquet(path, batch_size=batch_size)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
