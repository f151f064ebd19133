"""POST /v1/events: per-event results, durability, idempotency, enrichment, the DLQ, and a
clear 4xx for every kind of bad input."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.gateway_testing import Api
from tastebud.schemas import DeviceType
from tastebud.stores import EventQuery

T0 = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)


def payload(index: int, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": f"e{index}",
        "user_id": f"u{index % 3}",
        "item_id": f"i{index % 5}",
        "event_type": "play",
        "value": 30.0 + index,
        "timestamp": (T0 + timedelta(minutes=index)).isoformat(),
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not ...}


def stored_ids(api: Api) -> list[str]:
    return sorted(api.database.events.read_arrow().column("event_id").to_pylist())


def test_one_event_is_accepted_stored_and_enriched(api: Api) -> None:
    response = api.post_events(
        payload(1, context={"page": "home"}),
        **{
            "User-Agent": "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36",
            "Accept-Language": "pt-BR, pt;q=0.9",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "results": [
            {
                "index": 0,
                "status": "accepted",
                "event_id": "e1",
                "reasons": [],
                "message": None,
                "dead_letter_id": None,
            }
        ],
    }
    (event,) = api.database.events.scan()
    assert (event.user_id, event.item_id, event.value) == ("u1", "i1", 31.0)
    assert event.timestamp == T0 + timedelta(minutes=1)
    assert event.device_type == DeviceType.mobile and event.locale == "pt-BR"
    assert event.session_id is not None and event.session_id.startswith("s-")
    assert event.received_at is not None
    assert abs((datetime.now(UTC) - event.received_at).total_seconds()) < 60
    assert event.context == {"page": "home"}
    assert response.headers["x-request-id"]


def test_a_replayed_event_id_is_a_duplicate_and_stored_once(api: Api) -> None:
    batch = {"events": [payload(i) for i in range(5)]}
    assert api.post_events(batch).json()["accepted"] == 5
    again = api.post_events({"events": [payload(3), payload(9), payload(4)]}).json()
    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted", "duplicate"]
    assert (again["accepted"], again["duplicates"]) == (1, 2)
    # A repeat inside one request is a duplicate of its first occurrence.
    inside = api.post_events({"events": [payload(20), payload(20, value=1.0)]}).json()
    assert [r["status"] for r in inside["results"]] == ["accepted", "duplicate"]
    assert stored_ids(api) == sorted(["e0", "e1", "e2", "e3", "e4", "e9", "e20"])
    (kept,) = api.database.events.scan(EventQuery(user_ids=["u2"], item_ids=["i0"]))
    assert kept.value == 50.0  # the first occurrence's value


def test_events_without_an_id_get_one_from_their_content(api: Api) -> None:
    """So a client's retry of an id-less event is idempotent too (same rule as ingest)."""
    event = payload(1, event_id=...)
    first = api.post_events(event).json()["results"][0]
    second = api.post_events(event).json()["results"][0]
    assert first["status"] == "accepted" and second["status"] == "duplicate"
    assert first["event_id"] == second["event_id"] and first["event_id"].startswith("c-")
    assert api.database.events.count() == 1


def test_events_without_a_timestamp_are_dated_on_receipt(api: Api) -> None:
    before = datetime.now(UTC)
    response = api.post_events(
        {"events": [payload(1, timestamp=...), payload(2, timestamp=None), payload(3)]}
    )
    after = datetime.now(UTC)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    stored = {event.event_id: event for event in api.database.events.scan()}
    for event_id in ("e1", "e2"):
        event = stored[event_id]
        assert before - timedelta(seconds=1) <= event.timestamp <= after
        assert event.timestamp == event.received_at
    assert stored["e3"].timestamp == T0 + timedelta(minutes=3)


def test_require_timestamp_rejects_events_without_one(
    api_factory: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASTEBUD_EVENTS__REQUIRE_TIMESTAMP", "true")
    api = api_factory()
    document = api.post_events({"events": [payload(1, timestamp=...), payload(2)]}).json()
    assert [r["status"] for r in document["results"]] == ["rejected", "accepted"]
    assert document["results"][0]["reasons"] == ["missing_field"]
    assert "timestamp" in document["results"][0]["message"]
    assert stored_ids(api) == ["e2"]


def test_openapi_says_the_timestamp_is_optional(embedded_api: Api) -> None:
    schema = embedded_api.client.get("/openapi.json").json()["components"]["schemas"]["EventIn"]
    assert "timestamp" not in schema["required"]
    assert "received" in schema["properties"]["timestamp"]["description"]


def test_a_mixed_batch_stores_every_good_event_and_reports_every_bad_one(api: Api) -> None:
    bad = {
        1: (payload(1, event_type="jump"), "unknown_event_type"),
        3: (payload(3, timestamp="2999-01-01T00:00:00Z"), "timestamp_in_future"),
        4: (payload(4, user_id=["not", "a", "string"]), "invalid_type"),
        5: (payload(5, device_type=["web"]), "invalid_device_type"),
        6: (payload(6, item_id=...), "missing_field"),
        7: ("not an object", "invalid_type"),
        8: (payload(8, event_type="rating", value=None), "value_required"),
        9: (payload(9, user_id="bad id!"), "invalid_id"),
        10: (payload(10, context={"blob": "x" * 5000}), "context_too_large"),
        11: (payload(11, surprise=1), "unknown_field"),
    }
    events = [bad[i][0] if i in bad else payload(i) for i in range(13)]
    response = api.post_events({"events": events})
    assert response.status_code == 202
    document = response.json()
    assert (document["accepted"], document["rejected"]) == (13 - len(bad), len(bad))
    for result in document["results"]:
        index = result["index"]
        if index in bad:
            assert result["status"] == "rejected", result
            assert bad[index][1] in result["reasons"], result
            assert result["message"]
            assert result["dead_letter_id"] is not None
        else:
            assert result["status"] == "accepted"
    assert stored_ids(api) == sorted(f"e{i}" for i in range(13) if i not in bad)
    # Every rejected event is in the dead-letter queue with its raw payload and reasons.
    letters = api.database.gateway.dead_letters.list_entries(limit=100)
    assert len(letters) == len(bad)
    by_id = {entry.entry_id: entry for entry in letters}
    for result in document["results"]:
        if result["status"] == "rejected":
            entry = by_id[result["dead_letter_id"]]
            assert entry.kind == "invalid"
            assert json.loads(entry.payload) == events[result["index"]]
            assert list(entry.reasons) == result["reasons"]


def test_schema_version_1_events_are_upgraded(api: Api) -> None:
    response = api.post_events(payload(1, schema_version=1))
    assert response.status_code == 202
    (event,) = api.database.events.scan()
    assert event.schema_version == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (payload(1, event_type="jump"), "invalid_events"),
        ({"events": [payload(1, timestamp="yesterday"), 42]}, "invalid_events"),
    ],
)
def test_nothing_valid_is_a_422_with_every_reason(
    embedded_api: Api, body: dict[str, Any], code: str
) -> None:
    response = embedded_api.post_events(body)
    assert response.status_code == 422
    document = response.json()
    assert document["error"]["code"] == code
    assert all(r["status"] == "rejected" and r["reasons"] for r in document["results"])
    assert embedded_api.database.events.count() == 0


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("malformed json", b'{"user_id": "u1",', {}, 400, "malformed_json"),
    ("invalid utf-8", b'{"user_id": "\xff\xfe"}', {}, 400, "invalid_utf8"),
    ("nan literal", b'{"user_id": "u1", "value": NaN}', {}, 400, "malformed_json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, {}, 400, "malformed_json"),
    ("empty body", b"", {}, 400, "empty_body"),
    ("a json array", b"[1, 2]", {}, 400, "invalid_body"),
    ("a json string", b'"event"', {}, 400, "invalid_body"),
    ("events not a list", b'{"events": {"a": 1}}', {}, 400, "invalid_body"),
    ("extra top-level field", b'{"events": [], "more": 1}', {}, 400, "invalid_body"),
    ("empty batch", b'{"events": []}', {}, 400, "empty_batch"),
    ("form body", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, ""),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_bodies_get_a_clear_4xx(
    embedded_api: Api, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = embedded_api.client.post(
        "/v1/events",
        content=body,
        headers=embedded_api.headers(**{"Content-Type": "application/json", **headers}),
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == (code or "unsupported_media_type")
    assert error["message"] and error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/events"),
        ("PUT", "/v1/items"),
        ("POST", "/v1/recommendations"),
        ("POST", "/v1/features"),
    ],
)
def test_a_compressed_body_is_refused_with_415_naming_the_encoding(
    embedded_api: Api, method: str, path: str
) -> None:
    """The server decodes no Content-Encoding: a gzip body was answered "not valid UTF-8"
    (or "error parsing the body"), and a plain body labelled gzip was taken as it was."""
    event = json.dumps(payload(1)).encode()
    for body in (gzip.compress(event), event):
        response = embedded_api.client.request(
            method,
            path,
            content=body,
            headers=embedded_api.headers(
                "admin", **{"Content-Type": "application/json", "Content-Encoding": "gzip"}
            ),
        )
        assert response.status_code == 415, response.text
        error = response.json()["error"]
        assert error["code"] == "unsupported_content_encoding"
        assert "gzip" in error["message"]
    assert embedded_api.database.events.count() == 0
    plain = embedded_api.post_events(payload(1), **{"Content-Encoding": "identity"})
    assert plain.status_code == 202, plain.text


def test_batch_and_body_limits(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_batch_events=3, max_body_bytes=2048)
    too_many = api.post_events({"events": [payload(i) for i in range(4)]})
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "batch_too_large"
    huge = json.dumps({"events": [payload(0, context={"x": "y" * 3000})]}).encode()
    declared = api.client.post("/v1/events", content=huge, headers=api.headers())
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield huge[:1000]
        yield huge[1000:]

    streamed = api.client.post("/v1/events", content=chunks(), headers=api.headers())
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "body_too_large"
    assert api.database.events.count() == 0
    assert api.post_events({"events": [payload(i) for i in range(3)]}).status_code == 202


def test_request_ids_are_echoed(embedded_api: Api) -> None:
    response = embedded_api.post_events(payload(1), **{"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    bad = embedded_api.post_events(payload(1), **{"X-Request-ID": "no spaces allowed"})
    assert bad.headers["x-request-id"] != "no spaces allowed"
