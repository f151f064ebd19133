"""The data model: Event (v2), Item and User, and their Arrow forms.

Pydantic models are the typed, documented form (the API and Python callers use them); the
Arrow schemas are the bulk form (stores, ingest, training). ``tastebud.validation`` enforces
the same rules on Arrow batches; a test keeps the two in agreement.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tastebud.config import EventRules

if TYPE_CHECKING:
    import pyarrow as pa

EVENT_SCHEMA_VERSION = 2
ARROW_SCHEMA_NAMES = ("TIMESTAMP_TYPE", "EVENT_SCHEMA", "ITEM_SCHEMA", "USER_SCHEMA")


@lru_cache(maxsize=1)
def arrow_schemas() -> dict[str, Any]:
    """The Arrow schemas, built on first use: pyarrow (with numpy) is a fifth of a second of
    start-up that commands without Arrow need not pay (docs/benchmarks.md, CLI start-up)."""
    import pyarrow as pa  # lazy: see the docstring

    timestamp = pa.timestamp("us", tz="UTC")

    events = pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("event_type", pa.string(), nullable=False),
            pa.field("value", pa.float64()),
            pa.field("timestamp", timestamp, nullable=False),
            pa.field("session_id", pa.string()),
            pa.field("device_type", pa.string()),
            pa.field("locale", pa.string()),
            pa.field("schema_version", pa.int8(), nullable=False),
            pa.field("context", pa.string()),  # JSON text; null when empty
            pa.field("received_at", timestamp),
        ]
    )

    items = pa.schema(
        [
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("title", pa.string()),
            pa.field("creator", pa.string()),
            pa.field("categories", pa.list_(pa.string())),
            pa.field("created_at", timestamp),
            pa.field("attributes", pa.string()),  # JSON text
            pa.field("active", pa.bool_(), nullable=False),
        ]
    )

    users = pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("created_at", timestamp),
            pa.field("attributes", pa.string()),  # JSON text
        ]
    )
    return {
        "TIMESTAMP_TYPE": timestamp,
        "EVENT_SCHEMA": events,
        "ITEM_SCHEMA": items,
        "USER_SCHEMA": users,
    }


def __getattr__(name: str) -> Any:
    """``from tastebud.schemas import EVENT_SCHEMA`` resolves here (PEP 562), lazily."""
    if name in ARROW_SCHEMA_NAMES:
        return arrow_schemas()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DeviceType(StrEnum):
    web = "web"
    mobile = "mobile"
    other = "other"


DEVICE_TYPE_VALUES = frozenset(member.value for member in DeviceType)


def new_event_id() -> str:
    """A time-ordered UUIDv7 string: unique without coordination, and index-friendly."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 text or epoch seconds (number or numeric text) to an aware UTC datetime.

    Epoch values are always seconds: a millisecond epoch lands far in the future and is
    rejected by the time window rather than silently reinterpreted.
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise PydanticCustomError(
            "timestamp_invalid", "timestamp must be ISO-8601 or epoch seconds"
        )
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            return _from_epoch(seconds)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise PydanticCustomError(
                "timestamp_invalid",
                "timestamp '{value}' is not ISO-8601 or epoch seconds",
                {"value": text[:64]},
            ) from None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PydanticCustomError("timestamp_invalid", "timestamp must be ISO-8601 or epoch seconds")


def _from_epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise PydanticCustomError("timestamp_invalid", "timestamp is not a finite number")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise PydanticCustomError(
            "timestamp_out_of_range",
            "timestamp {value} is outside any sane window",
            {"value": seconds},
        ) from None


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _rules(info: ValidationInfo) -> EventRules:
    context = info.context or {}
    rules = context.get("rules") if isinstance(context, dict) else None
    return rules if isinstance(rules, EventRules) else _default_rules()


@lru_cache(maxsize=1)
def _default_rules() -> EventRules:
    return EventRules()


def check_id(value: str, field: str, rules: EventRules) -> str:
    if len(value) > rules.max_id_length:
        raise PydanticCustomError(
            "id_too_long",
            "{field} is longer than {limit} characters",
            {"field": field, "limit": rules.max_id_length},
        )
    if not value or not _compiled(rules.id_pattern).fullmatch(value):
        raise PydanticCustomError(
            "invalid_id",
            "{field} must be 1+ of letters, digits and _.:@/+=#~|-",
            {"field": field},
        )
    return value


def required_id(value: Any, field: str) -> Any:
    """A present id, numbers read as text (42 and 42.0 both mean "42")."""
    if value is None:
        raise PydanticCustomError("missing_field", "{field} is required", {"field": field})
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def context_json(context: dict[str, Any] | None) -> str | None:
    """The stored form of a context: compact JSON, or None when empty."""
    if not context:
        return None
    return json.dumps(context, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class Event(BaseModel):
    """One feedback event (schema v2). Validate with ``Event.from_payload`` to apply rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=new_event_id, description="Client idempotency key.")
    user_id: str
    item_id: str
    event_type: str
    value: float | None = Field(default=None, description="Rating, seconds played, price...")
    timestamp: datetime = Field(description="ISO-8601 or epoch seconds; stored as UTC.")
    session_id: str | None = None
    device_type: DeviceType | None = None
    locale: str | None = Field(default=None, description="BCP-47 tag such as en-US.")
    schema_version: int = EVENT_SCHEMA_VERSION
    context: dict[str, Any] = Field(default_factory=dict, description="Small free-form dict.")
    received_at: datetime | None = Field(default=None, description="Set by the server.")

    @classmethod
    def from_payload(cls, payload: dict[str, Any], rules: EventRules | None = None) -> Event:
        """Validate an untrusted payload (v1 or v2) under the given rules."""
        return cls.model_validate(payload, context={"rules": rules or _default_rules()})

    @field_validator("user_id", "item_id", "event_type", mode="before")
    @classmethod
    def _required(cls, value: Any, info: ValidationInfo) -> Any:
        return required_id(value, info.field_name or "id")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _required_time(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("missing_field", "timestamp is required")
        return value

    @field_validator("event_id", "session_id", mode="before")
    @classmethod
    def _optional_id(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else required_id(value, info.field_name or "id")

    @field_validator("event_id", mode="before")
    @classmethod
    def _generate_id(cls, value: Any) -> Any:
        return new_event_id() if value is None else value

    @field_validator("event_id", "user_id", "item_id", "session_id")
    @classmethod
    def _ids(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return check_id(value, info.field_name or "id", _rules(info))

    @field_validator("event_type")
    @classmethod
    def _known_type(cls, value: str, info: ValidationInfo) -> str:
        if value not in _rules(info).types:
            raise PydanticCustomError(
                "unknown_event_type",
                "event_type '{value}' is not configured",
                {"value": value[:64]},
            )
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("value_invalid", "value must be a finite number") from None
        if not math.isfinite(number):
            raise PydanticCustomError("value_invalid", "value must be a finite number")
        return number

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> int:
        if value in (1, 2, "1", "2") and not isinstance(value, bool):
            return EVENT_SCHEMA_VERSION  # v1 had no session, device or locale: nothing to map
        raise PydanticCustomError(
            "unsupported_schema_version",
            "schema_version must be 1 or 2, got {value}",
            {"value": str(value)[:16]},
        )

    @field_validator("device_type", mode="before")
    @classmethod
    def _device(cls, value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or value not in DEVICE_TYPE_VALUES):
            raise PydanticCustomError(
                "invalid_device_type", "device_type must be web, mobile or other"
            )
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _context_object(cls, value: Any) -> Any:
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, dict):
            raise PydanticCustomError("context_invalid", "context must be a JSON object")
        return value

    @field_validator("timestamp", "received_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return None if value is None else parse_timestamp(value)

    @field_validator("timestamp")
    @classmethod
    def _in_window(cls, value: datetime, info: ValidationInfo) -> datetime:
        rules = _rules(info)
        if value < rules.earliest_timestamp:
            raise PydanticCustomError(
                "timestamp_too_old",
                "timestamp {value} is before {limit}",
                {"value": value.isoformat(), "limit": rules.earliest_timestamp.isoformat()},
            )
        if value.timestamp() > time.time() + rules.max_future_seconds:
            raise PydanticCustomError(
                "timestamp_in_future",
                "timestamp {value} is too far in the future",
                {"value": value.isoformat()},
            )
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if len(value) > _rules(info).max_locale_length or not LOCALE_RE.fullmatch(value):
            raise PydanticCustomError(
                "invalid_locale", "locale '{value}' is not a BCP-47 tag", {"value": value[:40]}
            )
        return value

    @field_validator("context")
    @classmethod
    def _small_context(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        try:
            encoded = context_json(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("context_invalid", "context must be a JSON object") from None
        size = len(encoded.encode()) if encoded else 0
        limit = _rules(info).max_context_bytes
        if size > limit:
            raise PydanticCustomError(
                "context_too_large",
                "context is {size} bytes; the limit is {limit}",
                {"size": size, "limit": limit},
            )
        return value

    @model_validator(mode="after")
    def _value_required(self, info: ValidationInfo) -> Event:
        spec = _rules(info).types.get(self.event_type)
        if spec is not None and spec.value_required and self.value is None:
            raise PydanticCustomError(
                "value_required", "event_type '{value}' needs a value", {"value": self.event_type}
            )
        return self


LOCALE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


class CatalogRecord(BaseModel):
    """What items and users share: a creation time and free-form attributes."""

    model_config = ConfigDict(extra="forbid")

    created_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return None if value is None else parse_timestamp(value)


class Item(CatalogRecord):
    """A catalog entry: a track, a product, a film. ``attributes`` holds audio features,
    price, tags, audio_path..."""

    item_id: str
    title: str | None = None
    creator: str | None = Field(default=None, description="Artist, brand, director.")
    categories: list[str] = Field(default_factory=list)
    active: bool = True

    @field_validator("item_id", mode="before")
    @classmethod
    def _required_id(cls, value: Any) -> Any:
        return required_id(value, "item_id")

    @field_validator("item_id")
    @classmethod
    def _id(cls, value: str, info: ValidationInfo) -> str:
        return check_id(value, "item_id", _rules(info))


class User(CatalogRecord):
    user_id: str

    @field_validator("user_id", mode="before")
    @classmethod
    def _required_id(cls, value: Any) -> Any:
        return required_id(value, "user_id")

    @field_validator("user_id")
    @classmethod
    def _id(cls, value: str, info: ValidationInfo) -> str:
        return check_id(value, "user_id", _rules(info))


# --- Arrow conversions ---------------------------------------------------------------


def events_to_arrow(events: Sequence[Event]) -> pa.Table:
    import pyarrow as pa  # lazy: see arrow_schemas

    schema = arrow_schemas()["EVENT_SCHEMA"]
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for event in events:
        columns["event_id"].append(event.event_id)
        columns["user_id"].append(event.user_id)
        columns["item_id"].append(event.item_id)
        columns["event_type"].append(event.event_type)
        columns["value"].append(event.value)
        columns["timestamp"].append(event.timestamp)
        columns["session_id"].append(event.session_id)
        columns["device_type"].append(event.device_type.value if event.device_type else None)
        columns["locale"].append(event.locale)
        columns["schema_version"].append(event.schema_version)
        columns["context"].append(context_json(event.context))
        columns["received_at"].append(event.received_at)
    return pa.table(columns, schema=schema)


def events_from_arrow(table: pa.Table) -> list[Event]:
    """Rows of a stored events table back to models (no re-validation: stores hold valid rows)."""
    rows = table.select(arrow_schemas()["EVENT_SCHEMA"].names).to_pylist()
    events = []
    for row in rows:
        row["context"] = json.loads(row["context"]) if row["context"] else {}
        row["device_type"] = DeviceType(row["device_type"]) if row["device_type"] else None
        events.append(Event.model_construct(**row))
    return events
