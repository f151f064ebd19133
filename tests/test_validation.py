"""Columnar validation: the same verdicts as the Event model, on whole batches."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tastebud.config import EventRules
from tastebud.schemas import EVENT_SCHEMA, Event
from tastebud.validation import content_event_ids, pydantic_reasons, validate_event_table

RULES = EventRules(max_context_bytes=64)
NOW = time.time()

FIELD_VALUES: dict[str, list[Any]] = {
    "event_id": [None, "ev-1", "", "bad id", "x" * 129, "a/b:c@d"],
    "user_id": [None, "u1", "", "user 1", "ü", "y" * 200, "U-9"],
    "item_id": [None, "i1", "item#7", "bad\nid", "nul\x00id"],
    "event_type": [None, "play", "rating", "explode", "", "PLAY", "pl\x00ay"],
    "value": [None, "4.5", "abc", "nan", "inf", "", "1e3", "-2"],
    "timestamp": [
        None,
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00+02:00",
        "2024-05-01 10:00:00",
        "1714557600",
        "1714557600.25",
        "1714557600000",  # milliseconds: far in the future
        "0",
        "1989-12-31T23:59:59Z",
        "not a time",
        "9e99",
        str(int(NOW + 10 * 86_400)),
    ],
    "session_id": [None, "s1", "bad session"],
    "device_type": [None, "web", "mobile", "other", "tablet", ""],
    "locale": [None, "en-US", "pt_BR", "x", "en-US-with-a-very-long-tail-that-never-ends"],
    "schema_version": [None, "1", "2", "3", "two"],
    "context": [
        None,
        "",
        '{"page":"home"}',
        "[1,2]",
        "{bad json",
        '{"k":"' + "z" * 80 + '"}',
        '{"k":"a\\u0000b"}',  # text no store can keep, behind JSON escapes
        '{"a\\ud800":1}',
    ],
}

rows = st.fixed_dictionaries(
    {name: st.sampled_from(values) for name, values in FIELD_VALUES.items()}
)


def columnar(batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    table = pa.table(
        {name: pa.array([r[name] for r in batch], pa.string()) for name in FIELD_VALUES}
    )
    result = validate_event_table(table, RULES, now=NOW)
    accepted = result.table.to_pylist()
    return accepted, {r.row - 1: r.reason for r in result.rejections}


def model(row: dict[str, Any]) -> Event | list[str]:
    payload = {k: v for k, v in row.items() if v is not None}
    try:
        return Event.from_payload(payload, RULES)
    except ValidationError as error:
        return pydantic_reasons(error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=20))
def test_columnar_and_model_agree(batch: list[dict[str, Any]]) -> None:
    # The model checks the future bound against the wall clock; keep rows clear of the edge.
    accepted, rejected = columnar(batch)
    accepted_iter = iter(accepted)
    for index, row in enumerate(batch):
        verdict = model(row)
        if isinstance(verdict, list):
            assert index in rejected, (row, verdict)
            assert rejected[index] in verdict, (row, rejected[index], verdict)
        else:
            assert index not in rejected, (row, rejected.get(index))
            stored = next(accepted_iter)
            assert stored["user_id"] == verdict.user_id
            assert stored["timestamp"] == verdict.timestamp
            assert stored["value"] == verdict.value
            assert stored["device_type"] == (verdict.device_type or None)
            if row["event_id"] is not None:
                assert stored["event_id"] == verdict.event_id
            assert stored["schema_version"] == 2


def test_rejections_carry_row_numbers_and_good_rows_survive() -> None:
    raw = pa.table(
        {
            "user_id": ["u1", None, "u3", "u4"],
            "item_id": ["i1", "i2", "i3", "i4"],
            "event_type": ["play", "play", "warp", "rating"],
            "timestamp": [1714557600, 1714557600, 1714557600, 1714557600],
            "value": [None, None, None, None],
        }
    )
    result = validate_event_table(raw, EventRules(), row_numbers=[10, 11, 12, 13])
    assert result.table.schema == EVENT_SCHEMA
    assert result.table.column("user_id").to_pylist() == ["u1"]
    assert [(r.row, r.reason) for r in result.rejections] == [
        (11, "missing_field"),
        (12, "unknown_event_type"),
        (13, "value_required"),
    ]
    assert "warp" in result.rejections[1].message
    assert list(result.row_numbers) == [10]


def test_typed_columns_are_accepted() -> None:
    moment = datetime(2024, 3, 1, 12, tzinfo=UTC)
    raw = pa.table(
        {
            "user_id": pa.array([1, 2], pa.int64()),
            "item_id": pa.array([10.0, 11.0]),
            "event_type": ["rating", "play"],
            "timestamp": pa.array([moment, moment], pa.timestamp("ms", tz="UTC")),
            "value": pa.array([4.0, None]),
        }
    )
    result = validate_event_table(raw, EventRules())
    assert result.rejections == []
    rows = result.table.to_pylist()
    assert [r["user_id"] for r in rows] == ["1", "2"]
    assert [r["item_id"] for r in rows] == ["10", "11"]
    assert rows[0]["timestamp"] == moment and rows[0]["value"] == 4.0


def test_generated_ids_are_deterministic_and_distinct() -> None:
    raw = pa.table(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["i1", "i1", "i1"],
            "event_type": ["play", "like", "play"],
            "timestamp": [1714557600, 1714557600, 1714557600],
        }
    )
    first = validate_event_table(raw, EventRules()).table.column("event_id").to_pylist()
    second = validate_event_table(raw, EventRules()).table.column("event_id").to_pylist()
    assert first == second and len(set(first)) == 3
    assert first == content_event_ids(validate_event_table(raw, EventRules()).table)


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("4102444800", "timestamp_in_future"),
        ("1714557600000", "timestamp_out_of_range"),
        ("631151999", "timestamp_too_old"),
    ],
)
def test_time_window(timestamp: str, reason: str) -> None:
    raw = pa.table(
        {"user_id": ["u"], "item_id": ["i"], "event_type": ["play"], "timestamp": [timestamp]}
    )
    (rejection,) = validate_event_table(raw, EventRules()).rejections
    assert rejection.reason == reason


def test_device_type_of_the_wrong_shape_is_a_reason_not_a_crash() -> None:
    from pydantic import ValidationError

    from tastebud.schemas import Event

    for bad in (["web"], {"kind": "web"}, 3):
        payload = {"user_id": "u", "item_id": "i", "event_type": "play",
                   "timestamp": "2024-01-01T00:00:00Z", "device_type": bad}  # fmt: skip
        with pytest.raises(ValidationError) as raised:
            Event.from_payload(payload, None)
        assert raised.value.errors()[0]["type"] == "invalid_device_type"


def test_messages_quote_the_offending_value() -> None:
    from pydantic import ValidationError

    from tastebud.schemas import Event

    payload = {"user_id": "u", "item_id": "i", "event_type": "teleport",
               "timestamp": "2024-01-01T00:00:00Z"}  # fmt: skip
    with pytest.raises(ValidationError) as raised:
        Event.from_payload(payload, None)
    assert raised.value.errors()[0]["msg"] == "event_type 'teleport' is not configured"


def test_a_context_given_as_text_is_read_as_a_body_s_json_is() -> None:
    from pydantic import ValidationError

    from tastebud.schemas import Event

    base = {"user_id": "u", "item_id": "i", "event_type": "play",
            "timestamp": "2024-01-01T00:00:00Z"}  # fmt: skip
    for text, reason in (('{"a": 1, "a": 2}', "duplicate_key"), ('{"n": 1%s}', "invalid_number")):
        with pytest.raises(ValidationError) as raised:
            Event.from_payload({**base, "context": text.replace("%s", "0" * 5_000)}, None)
        assert raised.value.errors()[0]["type"] == reason, raised.value.errors()
    kept = Event.from_payload({**base, "context": '{"page": "home"}'}, None)
    assert kept.context == {"page": "home"}
