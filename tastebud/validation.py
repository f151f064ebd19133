"""Columnar event validation: the rules of ``schemas.Event`` applied to whole Arrow batches.

Bulk ingest cannot afford a pydantic model per row (a few microseconds each is most of the
ingest budget), so this module checks columns with Arrow compute kernels and falls back to
Python only for the rows that need it (ISO text Arrow cannot parse, JSON contexts). Reason
codes are the same as the model's error types; ``tests/test_validation.py`` checks that both
paths accept and reject the same rows.

Over 400 lines because it is every rule of ``Event`` in columnar form, one step per rule in
the model's order; the agreement test reads the two side by side.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from tastebud.config import EventRules
from tastebud.schemas import (
    EVENT_SCHEMA,
    EVENT_SCHEMA_VERSION,
    LOCALE_RE,
    TIMESTAMP_TYPE,
    DeviceType,
    context_json,
    loads_json,
    parse_timestamp,
    unstorable_reason,
)

REQUIRED = ("user_id", "item_id", "event_type", "timestamp")
ID_FIELDS = ("event_id", "user_id", "item_id", "session_id")
DEVICE_TYPES = [member.value for member in DeviceType]
MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z: the end of datetime's range


@dataclass(frozen=True)
class Rejection:
    """One rejected row: where it was, a machine-readable reason, and a sentence for people."""

    row: int
    reason: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "message": self.message}


@dataclass
class ValidatedBatch:
    table: pa.Table  # the good rows, in EVENT_SCHEMA
    row_numbers: np.ndarray  # source row number of each good row
    rejections: list[Rejection] = field(default_factory=list)


class _Verdicts:
    """The first failure of each row; later checks never overwrite an earlier reason."""

    def __init__(self, size: int) -> None:
        self.reason = np.full(size, "", dtype=object)
        self.message: dict[int, str] = {}

    @property
    def ok(self) -> np.ndarray:
        return self.reason == ""

    def fail(self, mask: np.ndarray, reason: str, message: Callable[[int], str]) -> None:
        fresh = np.flatnonzero(mask & self.ok)
        self.reason[fresh] = reason
        for index in fresh:
            self.message[int(index)] = message(int(index))


def _mask(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _column(raw: pa.Table, name: str) -> pa.ChunkedArray:
    if name in raw.column_names:
        return raw.column(name)
    return pa.chunked_array([pa.nulls(raw.num_rows)])


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    if pa.types.is_null(column.type):
        return column.cast(pa.string())
    if pa.types.is_floating(column.type):
        # 42.0 read from a loosely typed file is the id "42", not "42.0".
        values = column.to_pylist()
        return pa.chunked_array(
            [
                [
                    None if v is None else (str(int(v)) if float(v).is_integer() else str(v))
                    for v in values
                ]
            ],
            pa.string(),
        )
    return column.cast(pa.string())


def _decode_binary(verdicts: _Verdicts, raw: pa.Table) -> pa.Table:
    """Binary columns (Parquet strings written without their UTF-8 annotation) as text; a
    value that is not UTF-8 rejects its row alone (Arrow's cast would refuse the batch)."""
    for index, name in enumerate(raw.column_names):
        column = raw.column(name)
        if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            continue
        try:
            text = column.cast(pa.string())
        except pa.ArrowInvalid:
            values = column.to_pylist()
            decoded: list[str | None] = [None] * len(values)
            bad = np.zeros(len(values), dtype=bool)
            for row, value in enumerate(values):
                try:
                    decoded[row] = None if value is None else value.decode("utf-8")
                except UnicodeDecodeError:
                    bad[row] = True
            verdicts.fail(bad, "invalid_text", lambda _, name=name: f"{name} is not valid UTF-8")
            text = pa.chunked_array([pa.array(decoded, pa.string())])
        raw = raw.set_column(index, pa.field(name, pa.string()), text)
    return raw


def _check_text(verdicts: _Verdicts, raw: pa.Table) -> None:
    """The model's first rule (``schemas.check_storable``): no NUL in any text column. Arrow
    strings are valid UTF-8, so a lone surrogate can only come from a JSON escape inside a
    context, which ``_contexts`` checks."""
    for name in raw.column_names:
        column = raw.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        verdicts.fail(
            _mask(pc.match_substring(column, "\x00")),
            "invalid_text",
            lambda _, name=name: f"{name} holds a character no store can keep (NUL)",
        )


def _check_ids(
    verdicts: _Verdicts, name: str, values: pa.ChunkedArray, rules: EventRules, required: bool
) -> None:
    present = _mask(pc.is_valid(values))
    if required:
        verdicts.fail(~present, "missing_field", lambda _: f"{name} is required")
    too_long = present & _mask(pc.greater(pc.utf8_length(values), rules.max_id_length))
    verdicts.fail(
        too_long, "id_too_long", lambda _: f"{name} is longer than {rules.max_id_length} characters"
    )
    bad = present & ~_mask(pc.match_substring_regex(values, rules.id_pattern))
    verdicts.fail(
        bad, "invalid_id", lambda _: f"{name} must be 1+ of letters, digits and _.:@/+=#~|-"
    )


def _parse_times(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch microseconds, plus masks of unparseable and out-of-range values."""
    size = len(column)
    micros = np.zeros(size, dtype=np.int64)
    invalid = np.zeros(size, dtype=bool)
    out_of_range = np.zeros(size, dtype=bool)
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            column = pc.assume_timezone(column, "UTC")
        values = column.cast(TIMESTAMP_TYPE).cast(pa.int64())
        micros = np.asarray(values.fill_null(0).to_numpy(), dtype=np.int64)
        return micros, invalid, out_of_range
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        seconds = np.asarray(column.cast(pa.float64()).fill_null(0).to_numpy(), dtype=np.float64)
        invalid |= ~np.isfinite(seconds)
        out_of_range |= np.isfinite(seconds) & (np.abs(seconds) > MAX_EPOCH_SECONDS)
        usable = np.isfinite(seconds) & ~out_of_range
        micros[usable] = np.round(seconds[usable] * 1_000_000).astype(np.int64)
        return micros, invalid, out_of_range
    text = _as_text(column)
    numeric = _mask(
        pc.match_substring_regex(text, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
    )
    if numeric.any():
        numbers = pc.cast(pc.utf8_trim_whitespace(pc.filter(text, pa.array(numeric))), pa.float64())
        seconds = np.asarray(numbers.to_numpy(), dtype=np.float64)
        far = ~np.isfinite(seconds) | (np.abs(seconds) > MAX_EPOCH_SECONDS)
        where = np.flatnonzero(numeric)
        out_of_range[where[far]] = True
        micros[where[~far]] = np.round(seconds[~far] * 1_000_000).astype(np.int64)
    others = np.flatnonzero(_mask(pc.is_valid(text)) & ~numeric)
    if others.size:
        subset = text.take(pa.array(others))
        try:
            parsed = pc.cast(subset, TIMESTAMP_TYPE).cast(pa.int64())
            micros[others] = np.asarray(parsed.to_numpy(), dtype=np.int64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for index, value in zip(others, subset.to_pylist(), strict=True):
                try:
                    moment = parse_timestamp(value)
                except ValueError:  # PydanticCustomError is a ValueError
                    invalid[index] = True
                    continue
                micros[index] = _to_micros(moment)
    return micros, invalid, out_of_range


def _to_micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _contexts(column: pa.ChunkedArray, verdicts: _Verdicts, rules: EventRules) -> list[str | None]:
    """Canonical JSON text per row (None when empty)."""
    values = column.to_pylist()
    out: list[str | None] = [None] * len(values)
    is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    for index, value in enumerate(values):
        if value is None or value == "":
            continue
        try:
            # As a body's JSON: a repeated key or an over-long integer is named, not kept.
            parsed = loads_json(value) if is_text else value
            unstorable = unstorable_reason({"context": parsed})
            if unstorable is not None:
                if verdicts.reason[index] == "":
                    verdicts.reason[index], verdicts.message[index] = unstorable
                continue
            if not isinstance(parsed, dict):
                raise TypeError("not an object")
            encoded = context_json(parsed)
        except (TypeError, ValueError):
            if verdicts.reason[index] == "":
                verdicts.reason[index] = "context_invalid"
                verdicts.message[index] = "context must be a JSON object"
            continue
        size = len(encoded.encode()) if encoded is not None else 0
        if size > rules.max_context_bytes:
            if verdicts.reason[index] == "":
                verdicts.reason[index] = "context_too_large"
                verdicts.message[index] = (
                    f"context is {size} bytes; the limit is {rules.max_context_bytes}"
                )
            continue
        out[index] = encoded
    return out


def content_event_ids(table: pa.Table) -> list[str]:
    """Deterministic ids for events that came without one: the same row always gets the same
    id, so re-running an interrupted ingest stores nothing twice."""
    columns = [
        table.column(name).to_pylist()
        for name in ("user_id", "item_id", "event_type", "timestamp", "value")
    ]
    ids = []
    for user, item, kind, moment, value in zip(*columns, strict=True):
        key = f"{user}\x1f{item}\x1f{kind}\x1f{_to_micros(moment)}\x1f{value!r}"
        ids.append("c-" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest())
    return ids


def validate_event_table(
    raw: pa.Table,
    rules: EventRules,
    row_numbers: np.ndarray | None = None,
    *,
    now: float | None = None,
) -> ValidatedBatch:
    """Check every row of ``raw`` (columns named like Event's fields, loosely typed) against
    ``rules``; return the good rows in EVENT_SCHEMA and a Rejection for each bad one.

    The checks run in the model's order: a row keeps the reason of its first failure."""
    size = raw.num_rows
    rows = np.arange(1, size + 1) if row_numbers is None else np.asarray(row_numbers)
    verdicts = _Verdicts(size)
    now = time.time() if now is None else now

    raw = _decode_binary(verdicts, raw)
    _check_text(verdicts, raw)
    ids = {name: _as_text(_column(raw, name)) for name in ID_FIELDS}
    for name in ("user_id", "item_id"):
        _check_ids(verdicts, name, ids[name], rules, required=True)
    for name in ("event_id", "session_id"):
        _check_ids(verdicts, name, ids[name], rules, required=False)
    event_type, type_values = _check_event_type(verdicts, raw, rules)
    micros = _check_timestamps(verdicts, raw, rules, now)
    value = _values(_column(raw, "value"), verdicts)
    device, locale = _check_device_and_locale(verdicts, raw, rules)
    _check_schema_version(verdicts, raw)
    contexts = _contexts(_column(raw, "context"), verdicts, rules)
    # Last, as in the model: a missing required value is only reported for otherwise valid rows.
    required = [name for name, spec in rules.types.items() if spec.value_required]
    needs_value = (
        _mask(pc.is_in(event_type, pa.array(required, pa.string())))
        if required
        else np.zeros(size, bool)
    )
    verdicts.fail(
        needs_value & np.isnan(value),
        "value_required",
        lambda i: f"event_type {type_values[i]!r} needs a value",
    )

    good = verdicts.ok
    columns = {**ids, "event_type": event_type, "device_type": device, "locale": locale}
    table = _good_rows(raw, good, columns, value, micros, contexts)
    rejections = [
        Rejection(int(rows[i]), str(verdicts.reason[i]), verdicts.message[int(i)])
        for i in np.flatnonzero(~good)
    ]
    return ValidatedBatch(table=table, row_numbers=rows[good], rejections=rejections)


def _check_event_type(
    verdicts: _Verdicts, raw: pa.Table, rules: EventRules
) -> tuple[pa.ChunkedArray, list[Any]]:
    """The event types as text (and as Python values, for messages): present, configured."""
    event_type = _as_text(_column(raw, "event_type"))
    verdicts.fail(
        ~_mask(pc.is_valid(event_type)), "missing_field", lambda _: "event_type is required"
    )
    known = _mask(pc.is_in(event_type, pa.array(list(rules.types), pa.string())))
    type_values = event_type.to_pylist()
    verdicts.fail(
        ~known,
        "unknown_event_type",
        lambda i: f"event_type {str(type_values[i])[:64]!r} is not configured",
    )
    return event_type, type_values


def _check_timestamps(
    verdicts: _Verdicts, raw: pa.Table, rules: EventRules, now: float
) -> np.ndarray:
    """The timestamps in microseconds: present, parseable, inside the rules' window."""
    stamp = _column(raw, "timestamp")
    verdicts.fail(~_mask(pc.is_valid(stamp)), "missing_field", lambda _: "timestamp is required")
    micros, invalid, out_of_range = _parse_times(stamp)
    verdicts.fail(
        invalid, "timestamp_invalid", lambda _: "timestamp is not ISO-8601 or epoch seconds"
    )
    verdicts.fail(
        out_of_range, "timestamp_out_of_range", lambda _: "timestamp is outside any sane window"
    )
    earliest = _to_micros(rules.earliest_timestamp)
    latest = int((now + rules.max_future_seconds) * 1_000_000)
    verdicts.fail(
        micros < earliest,
        "timestamp_too_old",
        lambda _: f"timestamp is before {rules.earliest_timestamp.isoformat()}",
    )
    verdicts.fail(
        micros > latest, "timestamp_in_future", lambda _: "timestamp is too far in the future"
    )
    return micros


def _check_device_and_locale(
    verdicts: _Verdicts, raw: pa.Table, rules: EventRules
) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """The device types (a known one, or none) and locales (a BCP-47 tag, or none)."""
    device = _as_text(_column(raw, "device_type"))
    bad_device = _mask(pc.is_valid(device)) & ~_mask(pc.is_in(device, pa.array(DEVICE_TYPES)))
    verdicts.fail(
        bad_device, "invalid_device_type", lambda _: "device_type must be web, mobile or other"
    )
    locale = _as_text(_column(raw, "locale"))
    locale_ok = _mask(pc.match_substring_regex(locale, f"^(?:{LOCALE_RE.pattern})$")) & ~_mask(
        pc.greater(pc.utf8_length(locale), rules.max_locale_length)
    )
    verdicts.fail(
        _mask(pc.is_valid(locale)) & ~locale_ok,
        "invalid_locale",
        lambda _: "locale is not a BCP-47 tag",
    )
    return device, locale


def _check_schema_version(verdicts: _Verdicts, raw: pa.Table) -> None:
    """An event's schema version, when given, is one this code reads (1 or 2)."""
    version = _column(raw, "schema_version")
    if not pa.types.is_null(version.type):
        as_text = _as_text(version)
        supported = _mask(pc.is_in(as_text, pa.array(["1", "2"])))
        verdicts.fail(
            _mask(pc.is_valid(as_text)) & ~supported,
            "unsupported_schema_version",
            lambda _: "schema_version must be 1 or 2",
        )


def _good_rows(
    raw: pa.Table,
    good: np.ndarray,
    columns: dict[str, pa.ChunkedArray],
    value: np.ndarray,
    micros: np.ndarray,
    contexts: list[str | None],
) -> pa.Table:
    """The rows that passed, in EVENT_SCHEMA, a content-derived id where none was given."""
    keep = pa.array(good)
    received = _column(raw, "received_at")
    received_micros, _, _ = _parse_times(received)
    table = pa.table(
        {
            "event_id": columns["event_id"].filter(keep),
            "user_id": columns["user_id"].filter(keep),
            "item_id": columns["item_id"].filter(keep),
            "event_type": columns["event_type"].filter(keep),
            "value": pa.array(value[good], pa.float64(), mask=np.isnan(value[good])),
            "timestamp": pa.array(micros[good], pa.int64()).cast(TIMESTAMP_TYPE),
            "session_id": columns["session_id"].filter(keep),
            "device_type": columns["device_type"].filter(keep),
            "locale": columns["locale"].filter(keep),
            "schema_version": pa.array(np.full(int(good.sum()), EVENT_SCHEMA_VERSION, np.int8)),
            "context": pa.array([c for c, g in zip(contexts, good, strict=True) if g], pa.string()),
            "received_at": pa.array(
                received_micros[good], pa.int64(), mask=~_mask(pc.is_valid(received))[good]
            ).cast(TIMESTAMP_TYPE),
        },
        schema=EVENT_SCHEMA,
    )
    missing_ids = ~_mask(pc.is_valid(table.column("event_id")))
    if missing_ids.any():
        generated = content_event_ids(table.filter(pa.array(missing_ids)))
        filled = np.asarray(table.column("event_id").to_pylist(), dtype=object)
        filled[missing_ids] = generated
        table = table.set_column(0, EVENT_SCHEMA.field("event_id"), pa.array(filled, pa.string()))
    return table


def _values(column: pa.ChunkedArray, verdicts: _Verdicts) -> np.ndarray:
    """The value column as float64 with NaN for missing; bad numbers are rejected."""
    size = len(column)
    if pa.types.is_null(column.type):
        return np.full(size, np.nan)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        numbers = column.cast(pa.float64())
        present = _mask(pc.is_valid(numbers))
        out = np.array(numbers.fill_null(np.nan).to_numpy(), dtype=np.float64)
    else:
        text = pc.utf8_trim_whitespace(_as_text(column))
        present = _mask(pc.is_valid(text)) & ~_mask(pc.equal(text, ""))
        try:
            numbers = pc.cast(pc.if_else(pa.array(present), text, None), pa.float64())
            out = np.array(numbers.fill_null(np.nan).to_numpy(), dtype=np.float64)
        except pa.ArrowInvalid:
            out = np.full(size, np.nan)
            for index, raw in zip(
                np.flatnonzero(present), pc.filter(text, pa.array(present)).to_pylist(), strict=True
            ):
                try:
                    out[index] = float(raw)
                except ValueError:
                    out[index] = math.inf  # rejected below
    verdicts.fail(
        present & ~np.isfinite(out), "value_invalid", lambda _: "value must be a finite number"
    )
    out[~np.isfinite(out)] = np.nan
    return out


PYDANTIC_REASONS = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "string_type": "invalid_type",
    "dict_type": "invalid_type",
}


def pydantic_reasons(error: ValidationError) -> list[str]:
    """The reason codes of a model validation error, as the columnar path names them."""
    reasons = []
    for detail in error.errors():
        kind = detail["type"]
        reasons.append(PYDANTIC_REASONS.get(kind, kind))
    return reasons
