"""Column mapping: whatever a file calls its columns, to Event / Item / User field names.

Names are matched case-insensitively against common aliases (``userId``, ``movieId``,
``artistID``...); ``--map target=source`` overrides. Interactions files may carry ``rating``
(explicit: the event becomes a ``rating`` with that value) or ``weight`` (a count or strength,
stored as the event's value).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

EVENT_ALIASES: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "eventid", "id"),
    "user_id": ("user_id", "userid", "user", "uid", "customer_id", "visitorid"),
    "item_id": (
        "item_id",
        "itemid",
        "item",
        "movieid",
        "artistid",
        "product_id",
        "productid",
        "track_id",
        "trackid",
        "iid",
    ),
    "event_type": ("event_type", "eventtype", "event", "type", "action"),
    "value": ("value",),
    "rating": ("rating", "score", "stars"),
    "weight": ("weight", "count", "plays", "playcount", "strength"),
    "timestamp": ("timestamp", "ts", "time", "datetime", "event_time", "date"),
    "session_id": ("session_id", "sessionid", "session"),
    "device_type": ("device_type", "device"),
    "locale": ("locale", "language", "lang"),
    "schema_version": ("schema_version",),
    "context": ("context",),
    "received_at": ("received_at",),
}

ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": EVENT_ALIASES["item_id"] + ("id",),
    "title": ("title", "name"),
    "creator": ("creator", "artist", "brand", "director", "author", "channel"),
    "categories": ("categories", "category", "genres", "genre"),
    "created_at": ("created_at", "release_date", "published_at", "released"),
    "attributes": ("attributes",),
    "active": ("active", "is_active", "available"),
}

USER_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": EVENT_ALIASES["user_id"] + ("id",),
    "created_at": ("created_at", "signup_date", "registered_at"),
    "attributes": ("attributes",),
}


class MappingError(ValueError):
    """The file's columns cannot give the fields that are required."""


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """``["user_id=customer", "item_id=sku"]`` -> ``{"user_id": "customer", ...}``."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        for part in pair.split(","):
            target, sep, source = part.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise MappingError(f"bad mapping {part!r}: use target=source, e.g. user_id=userId")
            mapping[target.strip()] = source.strip()
    return mapping


def resolve_columns(
    columns: list[str],
    aliases: Mapping[str, tuple[str, ...]],
    overrides: Mapping[str, str],
    *,
    strict: bool = True,
) -> dict[str, str]:
    """target field -> source column, for the targets the file has. ``strict=False`` is for
    one batch of a JSON Lines file, where a key may be absent from some rows."""
    unknown = set(overrides) - set(aliases)
    if unknown:
        raise MappingError(f"cannot map to {sorted(unknown)}: the fields are {', '.join(aliases)}")
    missing = [source for source in overrides.values() if source not in columns]
    if missing and strict:
        raise MappingError(f"the file has no column {missing[0]!r}; it has {columns}")
    by_lower = {name.lower(): name for name in columns}
    resolved = {target: source for target, source in overrides.items() if source in columns}
    taken = set(resolved.values())
    for target, names in aliases.items():
        if target in resolved:
            continue
        for name in names:
            source = by_lower.get(name)
            if source is not None and source not in taken:
                resolved[target] = source
                taken.add(source)
                break
    return resolved


def map_events(
    table: pa.Table,
    resolved: Mapping[str, str],
    *,
    default_event_type: str,
    default_timestamp: datetime | None,
) -> pa.Table:
    """Rename to Event fields and derive event_type / value from rating or weight columns."""
    columns: dict[str, pa.ChunkedArray] = {
        target: table.column(source)
        for target, source in resolved.items()
        if target not in ("rating", "weight")
    }
    size = table.num_rows
    event_type = columns.get("event_type")
    if "rating" in resolved:
        rating = table.column(resolved["rating"])
        columns["value"] = _coalesce(columns.get("value"), rating)
        implied = pc.if_else(pc.is_valid(rating), "rating", default_event_type)
        event_type = (
            implied if event_type is None else _coalesce(event_type.cast(pa.string()), implied)
        )
    if "weight" in resolved:
        columns["value"] = _coalesce(columns.get("value"), table.column(resolved["weight"]))
    if event_type is None:
        event_type = pa.array([default_event_type] * size, pa.string())
    columns["event_type"] = event_type  # type: ignore[assignment]
    if "timestamp" not in columns and default_timestamp is not None:
        columns["timestamp"] = pa.array([default_timestamp] * size, pa.timestamp("us", tz="UTC"))  # type: ignore[assignment]
    return pa.table(columns)


def _coalesce(first: Any, second: Any) -> Any:
    if first is None:
        return second
    if first.type != second.type:
        first, second = first.cast(pa.string()), second.cast(pa.string())
    return pc.coalesce(first, second)


def catalog_row(row: dict[str, Any], resolved: Mapping[str, str]) -> dict[str, Any]:
    """One item or user row: mapped fields, and every other column kept under attributes."""
    used = set(resolved.values())
    record: dict[str, Any] = {target: row.get(source) for target, source in resolved.items()}
    attributes = record.pop("attributes", None)
    if isinstance(attributes, str) and attributes.strip():
        attributes = json.loads(attributes)  # a ValueError here rejects the row
    attributes = dict(attributes or {})
    for name, value in row.items():
        if name not in used and value is not None:
            attributes[name] = typed_value(value)
    record["attributes"] = attributes
    if "categories" in record:
        record["categories"] = split_categories(record["categories"])
    if record.get("active") is None:
        record.pop("active", None)
    return record


INTEGER_TEXT = re.compile(r"[-+]?\d{1,18}")
FLOAT_TEXT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def typed_value(value: Any) -> Any:
    """Text read from CSV or JSON Lines back to what it holds: 120 -> int, 0.8 -> float,
    '["a","b"]' -> list, so content features see numbers, not strings."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if INTEGER_TEXT.fullmatch(text):
        digits = text.lstrip("+-")
        # "02139" and "007" stay text: zip codes and identifiers, not numbers.
        return value if len(digits) > 1 and digits[0] == "0" else int(text)
    if FLOAT_TEXT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else value
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def split_categories(value: Any) -> list[str]:
    """A category list from a list, JSON text or 'a|b|c' / 'a;b' / 'a,b' text."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    text = str(value).strip()
    if text.startswith("["):
        return split_categories(json.loads(text))
    for separator in ("|", ";", ","):
        if separator in text:
            return [part.strip() for part in text.split(separator) if part.strip()]
    return [text] if text else []
