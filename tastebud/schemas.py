"""The data model: Event (v2), Item and User, and their Arrow forms.

Pydantic models are the typed, documented form (the API and Python callers use them); the
Arrow schemas are the bulk form (stores, ingest, training). ``tastebud.validation`` enforces
the same rules on Arrow batches; a test keeps the two in agreement.

Over 400 lines because ``Event`` and the rules it applies (ids, text a store can hold,
timestamps, contexts) are one contract, read together with its columnar twin in
``validation.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from tastebud.config import EventRules
from tastebud.ranking_config import json_integer

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


# The rules an ``ExternalId`` is checked against while a request is served: the API's request
# middleware sets them from the app's settings (FastAPI validates parameters without a
# validation context), so every route applies ``events.max_id_length`` and ``events.id_pattern``
# the same way, with the same 422.
_active_rules: ContextVar[EventRules | None] = ContextVar("tastebud_rules", default=None)
ID_SCHEMA_MARK = "x-tastebud-id"


@contextmanager
def rules_in_force(rules: EventRules) -> Iterator[None]:
    """Check ``ExternalId`` values under ``rules`` inside this block."""
    token = _active_rules.set(rules)
    try:
        yield
    finally:
        _active_rules.reset(token)


def active_rules() -> EventRules:
    """The rules in force (``rules_in_force``), else the defaults."""
    return _active_rules.get() or _default_rules()


def _external_id(value: str, info: ValidationInfo) -> str:
    return check_id(value, info.field_name or "id", active_rules())


def _storable_text(value: str) -> str:
    if not storable(value):
        raise PydanticCustomError(
            "invalid_text", "text holds a character no store can keep (NUL or a lone surrogate)"
        )
    return value


ExternalId = Annotated[
    str,
    AfterValidator(_external_id),
    # The limits are the settings' (filled in by the app's OpenAPI builder, ``ID_SCHEMA_MARK``).
    WithJsonSchema({"type": "string", "minLength": 1, ID_SCHEMA_MARK: True}),
]
"""A user, item, session or event id: what every route and request schema accepts."""


class _StorableTextSchema:
    """States the text rule in the JSON schema too (a pattern without NUL or surrogates)."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> Any:
        schema = handler(core_schema)
        schema["pattern"] = STORABLE_TEXT_PATTERN
        return schema


# NUL only: ECMA regexes (OpenAPI's) cannot name lone surrogates, which a URL cannot carry.
STORABLE_TEXT_PATTERN = "^[^\\u0000]*$"
StorableText = Annotated[str, AfterValidator(_storable_text), _StorableTextSchema()]
"""Free text a request carries into a store (a category, a feature name): no NUL, no lone
surrogate (``UNSTORABLE_TEXT``)."""


JsonInt = Annotated[StrictInt, BeforeValidator(json_integer)]
"""An integer as JSON Schema means it: a boolean is not one, 13.0 is."""


def required_id(value: Any, field: str) -> Any:
    """A present id, numbers read as text (42 and 42.0 both mean "42")."""
    if value is None:
        raise PydanticCustomError("missing_field", "{field} is required", {"field": field})
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# --- the rule for text ------------------------------------------------------------------
# NUL cannot be stored in a PostgreSQL text or jsonb value, and a lone surrogate (which JSON's
# "\ud800" escape decodes to) cannot be encoded as UTF-8 by any store; both are refused at
# this layer so every backend and every route answers the same 422 (``invalid_text``).
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """Whether every backend can store ``text``: no NUL, no lone surrogate."""
    if text.isascii():
        return "\x00" not in text
    return UNSTORABLE_TEXT.search(text) is None


class DuplicateKeys(dict[str, Any]):
    """A JSON object that named a key more than once (``json_object``): Python's parser keeps
    the last value, but which one the client meant nobody can tell (RFC 8259: names SHOULD
    be unique), so the rule below refuses it as ``duplicate_key``."""

    duplicate: str = ""


def json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: a plain dict, or ``DuplicateKeys`` naming the
    first key given twice (about 1.6x the parse time of a plain ``json.loads``)."""
    built = dict(pairs)
    if len(built) == len(pairs):
        return built
    seen: set[str] = set()
    flagged = DuplicateKeys(built)
    flagged.duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
    return flagged


class TooManyDigits(float):
    """An integer in JSON text with more digits than Python turns into an int
    (``sys.get_int_max_str_digits()``, 4,300 by default): no number a store keeps, read as
    infinity so every rule for numbers refuses it, and named by the rule below as an
    ``invalid_number`` with too many digits (``json.loads`` raised a ValueError pointing at
    ``sys.set_int_max_str_digits()`` for the whole text instead)."""


def _bounded_int(text: str) -> int | float:
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:
        return TooManyDigits("inf")
    return int(text)


def loads_json(text: str, **options: Any) -> Any:
    """``json.loads`` with ``json_object`` (duplicate keys marked) and each integer too long
    to convert read as ``TooManyDigits``. The text is parsed again for that only when the
    first parse hit the limit, so the common path keeps the C parser's own integers."""
    try:
        return json.loads(text, object_pairs_hook=json_object, **options)
    except json.JSONDecodeError:
        raise
    except ValueError:
        pass  # the integer digit limit (any other ValueError is raised again below)
    return json.loads(text, object_pairs_hook=json_object, parse_int=_bounded_int, **options)


def unstorable_field(value: Any, where: str = "") -> str | None:
    """The path of the first string (value or key) in ``value`` no backend can store, or
    of the first number that is not finite, or None. Walks dicts and lists, as JSON decodes
    them."""
    found = _first_unstorable(value, where)
    return None if found is None else found[0]


def _first_unstorable(value: Any, where: str) -> tuple[str, str] | None:
    """(path, reason) of the first value no backend can store as the client meant it: text
    with NUL or a lone surrogate (``invalid_text``), a float that is not finite
    (``invalid_number``: JSON has no Infinity or NaN, PostgreSQL's jsonb refuses them;
    Python's parser reads ``1e999`` as infinity, NaN arrives from files), an object that
    named a key twice (``duplicate_key``, see ``DuplicateKeys``)."""
    if isinstance(value, str):
        return None if storable(value) else (where or "value", "invalid_text")
    if isinstance(value, TooManyDigits):
        return where or "value", "too_many_digits"
    if isinstance(value, float):
        return None if math.isfinite(value) else (where or "value", "invalid_number")
    if isinstance(value, dict):
        if isinstance(value, DuplicateKeys):
            named = f"{where}.{value.duplicate}" if where else value.duplicate
            return named, "duplicate_key"
        for key, inner in value.items():
            name = str(key)
            path = f"{where}.{name}" if where else name
            if isinstance(key, str) and not storable(key):
                return where or "key", "invalid_text"
            found = _first_unstorable(inner, path)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            found = _first_unstorable(inner, f"{where}[{index}]")
            if found is not None:
                return found
    return None


UNSTORABLE_MESSAGES = {
    "invalid_text": "{field} holds a character no store can keep (NUL or a lone surrogate)",
    "invalid_number": "{field} is not a finite number (JSON has no Infinity or NaN; a number "
    "this large does not fit a float)",
    "too_many_digits": "{field} is an integer with too many digits to read (more than "
    f"{sys.get_int_max_str_digits():,})",
    "duplicate_key": "{field} is given more than once; a JSON object names each key once",
}
"""The message of each reason ``unstorable_reason`` gives, with ``{field}`` to fill in."""

UNSTORABLE_CODES = {"too_many_digits": "invalid_number"}
"""The code of a reason whose message is its own but whose rule is another's."""


def unstorable_reason(value: Any) -> tuple[str, str] | None:
    """(reason, message) for the first value in ``value`` no backend can store, or None."""
    found = _first_unstorable(value, "")
    if found is None:
        return None
    where, reason = found
    message = UNSTORABLE_MESSAGES[reason].format(field=UNSTORABLE_TEXT.sub("?", where)[:80])
    return UNSTORABLE_CODES.get(reason, reason), message


def check_storable(value: Any) -> Any:
    """Raise ``invalid_text`` if any string in ``value`` is unstorable (see UNSTORABLE_TEXT),
    ``invalid_number`` if any number is not finite."""
    found = _first_unstorable(value, "")
    if found is not None:
        where, reason = found
        raise PydanticCustomError(
            UNSTORABLE_CODES.get(reason, reason),
            UNSTORABLE_MESSAGES[reason],
            {"field": UNSTORABLE_TEXT.sub("?", where)[:80]},
        )
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

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return check_storable(data)

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
            try:  # as a body's JSON: a repeated key or an over-long integer is named
                value = loads_json(value)
            except ValueError:
                value = None
            else:  # JSON escapes decode to what the raw text did not show
                check_storable({"context": value})
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

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return check_storable(data)

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
