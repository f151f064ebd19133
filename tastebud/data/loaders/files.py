"""Readers for delimited text, CSV, JSON Lines and Parquet, yielding loosely typed Arrow
batches with the source row number of every row.

A line that cannot be parsed (undecodable bytes, wrong field count, broken JSON, a quote that
never closes) becomes a Rejection with its line number; the reader goes on with the next line.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.data.formats import FORMATS
from tastebud.schemas import loads_json, unstorable_reason
from tastebud.validation import Rejection


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
    multiline: bool = False,
    batch_size: int = 100_000,
) -> Iterator[RawBatch]:
    """Split lines on ``separator`` (any string, e.g. '::'); ``columns=None`` reads a header.
    ``quoted`` uses the csv module (quotes, embedded separators) for one-character separators;
    ``multiline`` lets a quoted field hold line breaks (free text in catalog files).
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

    parsed: Iterator[tuple[int, list[str]]]
    if quoted:
        parsed = _csv_records(lines, separator, width, multiline, rejections)
    else:
        parsed = ((number, text.split(separator)) for number, text in lines)

    yielded = False
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
            rows, numbers, yielded = [], [], True
    if rows or rejections or not yielded:  # a header alone is an empty batch with its columns
        yield _to_batch(columns, rows, numbers, _drain(rejections))


class _PushbackLines:
    """Lines for ``csv.reader`` (newline restored), remembering which ones the current record
    used, so that a record swallowed by a broken quote can be read again line by line."""

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self._lines = lines
        self._pending: deque[tuple[int, str]] = deque()
        self.used: list[tuple[int, str]] = []

    def __iter__(self) -> _PushbackLines:
        return self

    def __next__(self) -> str:
        number, text = self._pending.popleft() if self._pending else next(self._lines)
        self.used.append((number, text))
        return text + "\n"

    def push_back(self, lines: list[tuple[int, str]]) -> None:
        self._pending.extendleft(reversed(lines))


def _csv_records(
    lines: Iterator[tuple[int, str]],
    separator: str,
    width: int,
    multiline: bool,
    rejections: list[Rejection],
) -> Iterator[tuple[int, list[str]]]:
    """CSV records, each with the line it starts on.

    A quote that does not close on its own line swallows the lines after it, up to the next
    quote character or the end of the file, so one stray quote used to lose every row it ran
    over. A record spanning lines is kept only when ``multiline`` allows it and it has the
    header's width; otherwise the line where the quote opened is rejected and the lines
    after it are read again, on their own.
    """
    feed = _PushbackLines(lines)
    reader = csv.reader(feed, delimiter=separator, strict=True)
    while True:
        feed.used.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            used = list(feed.used)
            at_end = "end of data" in str(error)
            if not used:
                return
            if len(used) == 1 and not at_end:
                rejections.append(Rejection(used[0][0], "malformed_row", f"bad quoting: {error}"))
                continue
            rejections.append(_unclosed_quote(used, at_end=at_end))
            feed.push_back(used[1:])
            continue
        used = feed.used
        if len(used) > 1 and not (multiline and len(fields) == width):
            rejections.append(_unclosed_quote(used, at_end=False))
            feed.push_back(used[1:])
            continue
        yield used[0][0], fields


def _unclosed_quote(used: list[tuple[int, str]], *, at_end: bool) -> Rejection:
    first, last = used[0][0], used[-1][0]
    ran_to = "the end of the file" if at_end else f"line {last}"
    reread = f"; lines {first + 1}-{last} were read again on their own" if last > first else ""
    return Rejection(
        first,
        "unclosed_quote",
        f"a quote opened on line {first} does not close on it (it ran to {ran_to}){reread}",
    )


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
            record = loads_json(text)
        except ValueError as error:
            detail = getattr(error, "msg", str(error))
            rejections.append(Rejection(number, "malformed_row", f"invalid JSON: {detail}"))
            continue
        if not isinstance(record, dict):
            rejections.append(Rejection(number, "malformed_row", "a line must be a JSON object"))
            continue
        # The models' first rule, before Arrow (which refuses surrogates and keeps NaN).
        unstorable = unstorable_reason(record)
        if unstorable is not None:
            rejections.append(Rejection(number, *unstorable))
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
    path: Path, fmt: str | None = None, *, batch_size: int = 100_000, multiline: bool = False
) -> Iterator[RawBatch]:
    """``multiline``: a quoted CSV field may span lines (catalog text), see ``_csv_records``."""
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        return read_delimited(
            path, separator=",", quoted=True, multiline=multiline, batch_size=batch_size
        )
    if fmt == "tsv":
        return read_delimited(path, separator="\t", quoted=False, batch_size=batch_size)
    if fmt == "jsonl":
        return read_jsonl(path, batch_size=batch_size)
    if fmt == "parquet":
        return read_parquet(path, batch_size=batch_size)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
