"""A JSON object that names a key twice is ambiguous (RFC 8259: names SHOULD be unique),
and Python's parser silently kept the last value: ``{"user_id": "u1", "user_id": "u2"}``
was stored for u2. Now the entry is rejected alone as ``duplicate_key`` naming the key, on
every backend; a batch body that names ``events`` twice is a 400 (the bad-input audit)."""

from __future__ import annotations

from api.gateway_testing import Api


def _send(api: Api, method: str, path: str, text: str) -> object:
    headers = {**api.headers("admin"), "Content-Type": "application/json"}
    return api.client.request(method, path, content=text, headers=headers)


def test_an_event_naming_a_key_twice_is_rejected_alone(api: Api) -> None:
    good = '{"user_id": "u1", "item_id": "i1", "event_type": "play", "event_id": "good"}'
    twice = '{"user_id": "u1", "user_id": "u2", "item_id": "i1", "event_type": "play"}'
    nested = (
        '{"user_id": "u1", "item_id": "i2", "event_type": "play",'
        ' "context": {"page": "a", "page": "b"}}'
    )
    response = _send(api, "POST", "/v1/events", f'{{"events": [{good}, {twice}, {nested}]}}')
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert [r["reasons"] for r in results[1:]] == [["duplicate_key"]] * 2
    assert "user_id" in results[1]["message"] and "context.page" in results[2]["message"]
    assert api.database.events.count() == 1


def test_a_catalog_entry_naming_a_key_twice_is_rejected_alone(api: Api) -> None:
    items = '{"items": [{"item_id": "good"}, {"item_id": "x", "item_id": "y"}]}'
    response = _send(api, "PUT", "/v1/items", items)
    assert response.status_code == 200, response.text
    assert [r["reasons"] for r in response.json()["results"]] == [[], ["duplicate_key"]]
    assert api.database.catalog.get_item("y") is None


def test_a_batch_naming_events_twice_is_a_400(embedded_api: Api) -> None:
    event = '{"user_id": "u1", "item_id": "i1", "event_type": "play"}'
    response = _send(embedded_api, "POST", "/v1/events", f'{{"events": [{event}], "events": []}}')
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "duplicate_key" and "events" in error["message"]


def test_bodies_fastapi_parses_are_held_to_the_same_json_rules(embedded_api: Api) -> None:
    """POST /v1/recommendations and /v1/features read their bodies through FastAPI, which
    kept the last of two ``users`` silently and took NaN; they now answer as /v1/events
    does: 400 ``duplicate_key`` or ``malformed_json`` naming what is wrong."""
    cases = [
        ("/v1/recommendations", '{"users": ["u1"], "users": ["u2"]}', "duplicate_key", "users"),
        ("/v1/recommendations", '{"users": ["u1"], "k": NaN}', "malformed_json", "NaN"),
        (
            "/v1/features",
            '{"entities": {"user": ["a"]}, "entities": {}}',
            "duplicate_key",
            "entities",
        ),
        ("/v1/features", '{"entities": {"user": ["a"], "user": ["b"]}}', "duplicate_key", "user"),
    ]
    for path, body, code, named in cases:
        response = _send(embedded_api, "POST", path, body)
        assert response.status_code == 400, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == code and named in error["message"], error
    fine = _send(embedded_api, "POST", "/v1/recommendations", '{"users": ["u1"], "k": 3}')
    assert fine.status_code == 200, fine.text
