"""The limits the server enforces, written into its OpenAPI schema from the settings, so a
client (or a fuzzer) reading the schema learns what will be accepted: ``k`` in
1..``serving.max_k``, the batch sizes, the event-time window, the locale tag, the value an
event type needs, the header limits (431), the rate limits (429), the rule on dictionary keys.

Done on the generated schema rather than in the models: the limits are settings, read per
app, while the models are built once at import.
"""

from __future__ import annotations

import time
from typing import Any

from tastebud.api.routes.ratings import MAX_ITEMS
from tastebud.config import Settings
from tastebud.ranking_config import RankingSettings
from tastebud.schemas import LOCALE_RE, STORABLE_TEXT_PATTERN

# Epoch seconds that datetime can represent (0001-01-02 .. 9999-12-31, a day of margin at the
# start for time zones), as the server does.
MIN_EPOCH = -62_135_510_400
MAX_EPOCH = 253_402_300_799


def years(first: int, last: int) -> str:
    return "|".join(str(year) for year in range(first, last + 1))


def iso_pattern(years: str) -> str:
    """An ISO-8601 date-time (with ``Z`` or an offset) in the ``years`` (a regex), days
    01-28: a subset of what the server parses (any ISO-8601 text, epoch seconds) that every
    month has, so a value matching it is always valid."""
    return (
        f"^({years})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
        r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]0[0-9]:[0-5][0-9])$"
    )


def document_limits(schema: dict[str, Any], settings: Settings) -> None:
    components = schema["components"]["schemas"]
    _keys_rule(components)
    _event_rules(components["EventIn"], settings)
    for name in ("ItemIn", "UserIn"):
        components[name]["properties"]["created_at"] = _catalog_time()
    _text_rule(components)
    serving = settings.serving
    for path in schema["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "k":
                    parameter["schema"].update(minimum=1, maximum=serving.max_k)
                elif parameter["name"] == "exclude":
                    items = next(s for s in parameter["schema"]["anyOf"] if "items" in s)
                    items["items"]["pattern"] = _id_list_pattern(settings)
                elif parameter["name"] == "items":  # GET /v1/users/{id}/ratings
                    parameter["schema"]["pattern"] = _strict_id_list_pattern(settings, MAX_ITEMS)
            _document_headers(operation, settings)
    batch = components.get("BatchRequest")
    if batch is not None:
        properties = batch["properties"]
        properties["k"].update(minimum=1, maximum=serving.max_k)
        users = next(s for s in properties["users"]["anyOf"] if s.get("type") == "array")
        users.update(minItems=1, maxItems=serving.max_batch_users)
        # Overrides are a partial [ranking] section: its own schema, every field optional.
        overrides = RankingSettings.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in overrides.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault("RankingSettings", overrides)
        properties["ranking"]["anyOf"] = [
            {"$ref": "#/components/schemas/RankingSettings"},
            {"type": "null"},
        ]
        # Users, or an anonymous session's recent items: exactly one of the two is a list
        # (null is the same as absent).
        batch["oneOf"] = [
            {"required": [name], "properties": {name: {"type": "array"}}}
            for name in ("users", "recent_items")
        ]


def _id_list_pattern(settings: Settings) -> str:
    """Ids separated by commas (blank parts skipped), each within the id rule."""
    chars = settings.events.id_pattern.removeprefix("^").removesuffix("$").removesuffix("+")
    part = f"\\s*({chars}{{1,{settings.events.max_id_length}}})?\\s*"
    return f"^{part}(,{part})*$"


def _strict_id_list_pattern(settings: Settings, most: int) -> str:
    """1 to ``most`` ids separated by commas, none blank, each within the id rule."""
    chars = settings.events.id_pattern.removeprefix("^").removesuffix("$").removesuffix("+")
    part = f"\\s*{chars}{{1,{settings.events.max_id_length}}}\\s*"
    return f"^{part}(,{part}){{0,{most - 1}}}$"


def _event_rules(event: dict[str, Any], settings: Settings) -> None:
    rules = settings.events
    properties = event["properties"]
    earliest = rules.earliest_timestamp
    now = time.time()
    # The window moves forward with the clock: the bound computed now stays true later.
    latest = now + rules.max_future_seconds
    last_year = time.gmtime(now).tm_year - 1
    properties["timestamp"] = {
        "anyOf": [
            {"type": "string", "pattern": iso_pattern(years(earliest.year + 1, last_year))},
            {"type": "number", "minimum": earliest.timestamp(), "maximum": latest},
            {"type": "null"},
        ],
        "description": properties["timestamp"].get("description", "")
        + f" Any ISO-8601 text or epoch seconds from {earliest.isoformat()} to "
        f"{rules.max_future_seconds:g} s past the server's clock is accepted; the string "
        "pattern here is a subset every month and year of which is valid.",
    }
    properties["locale"] = {
        "anyOf": [
            {
                "type": "string",
                "maxLength": rules.max_locale_length,
                "pattern": f"^{LOCALE_RE.pattern}$",
            },
            {"type": "null"},
        ],
        "description": properties["locale"].get("description", ""),
    }
    needing = sorted(name for name, spec in rules.types.items() if spec.value_required)
    if needing:
        event["allOf"] = [
            {
                "if": {
                    "properties": {"event_type": {"enum": needing}},
                    "required": ["event_type"],
                },
                "then": {"properties": {"value": {"type": "number"}}, "required": ["value"]},
            }
        ]


def _text_rule(components: dict[str, Any]) -> None:
    """No NUL in any text a request carries into a store (``schemas.check_storable``),
    nested JSON (attributes, contexts) included."""
    text = {"type": "string", "pattern": STORABLE_TEXT_PATTERN}
    names = {"pattern": STORABLE_TEXT_PATTERN}
    json_ref = {"$ref": "#/components/schemas/StorableJson"}
    components["StorableJson"] = {
        "description": "Any JSON value whose strings (and keys) hold no NUL.",
        "anyOf": [
            text,
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": json_ref},
            {"type": "object", "propertyNames": names, "additionalProperties": json_ref},
        ],
    }
    free_form = {"type": "object", "propertyNames": names, "additionalProperties": json_ref}
    for model, fields in (
        ("EventIn", ("event_type",)),
        ("ItemIn", ("title", "creator")),
    ):
        for field in fields:
            _constrain_strings(components[model]["properties"][field], STORABLE_TEXT_PATTERN)
    items = components["ItemIn"]["properties"]
    items["categories"]["items"] = dict(text)
    fields = (("EventIn", "context"), ("ItemIn", "attributes"), ("UserIn", "attributes"))
    for model, field in fields:
        description = components[model]["properties"][field].get("description", "")
        # An event's null context is an empty one; catalog attributes are an object.
        shape = {"anyOf": [free_form, {"type": "null"}]} if model == "EventIn" else free_form
        components[model]["properties"][field] = {**shape, "description": description}


def _keys_rule(node: Any) -> None:
    """Pydantic writes a ``dict`` whose key type has a pattern (``StorableText`` entity types
    in ``POST /v1/features``) as ``patternProperties``, which in JSON Schema only constrains
    the keys that match: a key with a NUL was schema-valid with any value, and refused by the
    server (the fuzz's ST202). The pattern is a rule on every key: ``propertyNames``."""
    if isinstance(node, list):
        for inner in node:
            _keys_rule(inner)
        return
    if not isinstance(node, dict):
        return
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
        ((pattern, values),) = node.pop("patternProperties").items()
        node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
        node["additionalProperties"] = values
    for inner in node.values():
        _keys_rule(inner)


def _constrain_strings(node: dict[str, Any], pattern: str) -> None:
    if node.get("type") == "string":
        node.setdefault("pattern", pattern)
    for option in node.get("anyOf", []):
        _constrain_strings(option, pattern)


def _catalog_time() -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "pattern": iso_pattern("[1-9][0-9]{3}")},
            {"type": "number", "minimum": MIN_EPOCH, "maximum": MAX_EPOCH},
            {"type": "null"},
        ],
        "description": "ISO-8601 or epoch seconds (an empty string is refused, "
        "`timestamp_invalid`); null or absent: unknown.",
    }


def _document_headers(operation: dict[str, Any], settings: Settings) -> None:
    """Every operation may be answered 431 before it runs (the request middleware)."""
    gateway = settings.gateway
    operation.setdefault("responses", {}).setdefault(
        "431",
        {
            "description": f"More than {gateway.max_headers} request headers, or more than "
            f"{gateway.max_header_bytes} bytes of them.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        },
    )
