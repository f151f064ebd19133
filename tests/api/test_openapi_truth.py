"""The OpenAPI schema tells the truth (issue 16): it states the limits and statuses the
server enforces, and the server's types are as strict as the schema's (a boolean is not a
number, 1 is not a boolean)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from api.gateway_testing import Api


def _operation(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return schema["paths"][path][method]


def test_the_schema_states_the_limits(embedded_api: Api) -> None:
    settings = embedded_api.settings
    schema = embedded_api.client.get("/openapi.json").json()
    recommendations = _operation(schema, "/v1/users/{user_id}/recommendations", "get")
    k = next(p for p in recommendations["parameters"] if p["name"] == "k")["schema"]
    assert (k["minimum"], k["maximum"]) == (1, settings.serving.max_k)
    batch = schema["components"]["schemas"]["BatchRequest"]
    assert batch["properties"]["k"]["maximum"] == settings.serving.max_k
    assert len(batch["oneOf"]) == 2  # users, or recent_items
    events = _operation(schema, "/v1/events", "post")["responses"]
    assert {"413", "422", "429", "431"} <= set(events)
    event = schema["components"]["schemas"]["EventIn"]
    assert event["allOf"][0]["then"]["required"] == ["value"]  # rating needs a value
    locale = event["properties"]["locale"]["anyOf"][0]
    assert locale["maxLength"] == settings.events.max_locale_length and locale["pattern"]
    created = schema["components"]["schemas"]["ItemIn"]["properties"]["created_at"]["anyOf"]
    assert created[0]["pattern"].startswith("^")  # no empty string
    title = schema["components"]["schemas"]["ItemIn"]["properties"]["title"]["anyOf"][0]
    assert title["pattern"] == "^[^\\u0000]*$"


def test_types_are_strict(embedded_api: Api) -> None:
    client, read = embedded_api.client, embedded_api.headers("read")
    for body in (
        {"users": ["u1"], "k": True},
        {"users": ["u1"], "explain": "yes"},
        {"users": ["u1"], "ranking": {"filters": {"inactive": 0}}},
        {"users": ["u1"], "recent_items": ["i1"]},
    ):
        response = client.post("/v1/recommendations", json=body, headers=read)
        assert response.status_code == 422, (body, response.text)
    fine = client.post("/v1/recommendations", json={"users": ["u1"], "k": 3.0}, headers=read)
    assert fine.status_code == 200, fine.text  # 3.0 is an integer in JSON
    items = [
        {"item_id": "a", "active": "yes"},
        {"item_id": "b", "active": 1},
        {"item_id": "c", "active": False},
        {"item_id": "d", "created_at": ""},
    ]
    response = client.put("/v1/items", json={"items": items}, headers=embedded_api.headers())
    assert [r["status"] for r in response.json()["results"]] == [
        "rejected",
        "rejected",
        "upserted",
        "rejected",
    ]


def test_405_lists_every_method_of_the_path(embedded_api: Api) -> None:
    response = embedded_api.client.request(
        "PATCH", "/v1/push/subscriptions", headers=embedded_api.headers()
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, POST"


def test_an_unknown_category_is_404(embedded_api: Api) -> None:
    response = embedded_api.client.get(
        "/v1/popular?category=nosuch", headers=embedded_api.headers("read")
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_category"


def test_a_nul_in_an_entity_type_is_outside_the_schema_and_refused(api: Api) -> None:
    """The 300-example fuzz's ST202 (POST /v1/features, both backends): an entity type with
    a NUL was schema-valid (pydantic's ``patternProperties`` constrains only matching keys)
    but refused 422 ``invalid_text``. The schema now refuses it too, as the server does."""
    schema = api.client.get("/openapi.json").json()
    request = {**schema["components"]["schemas"]["FeaturesRequest"], **schema}
    validator = jsonschema_rs.Draft202012Validator(request)
    good = {"entities": {"user": ["u1"]}, "features": ["user_engagement:events_7d"]}
    bad = {"entities": {"a\x00b": -338}, "features": ["user_engagement:events_7d"]}
    assert validator.is_valid(good)
    assert not validator.is_valid(bad)
    response = api.client.post("/v1/features", json=bad, headers=api.headers("read"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_text"
    # The feature store opened at start-up, not inside a request's 50 ms budget (its first
    # PostgreSQL connection made a loaded machine answer 503 to the first valid request).
    assert api.client.app.state.features is not None
    # Not refused as invalid (a loaded machine can still exceed the request budget: 503,
    # which is not a refusal of the body).
    accepted = api.client.post("/v1/features", json=good, headers=api.headers("read"))
    assert accepted.status_code in (200, 503), accepted.text


def test_every_dictionary_key_rule_holds_for_every_key(embedded_api: Api) -> None:
    """No ``patternProperties`` left open: a key pattern is a ``propertyNames`` rule."""
    open_patterns: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "patternProperties" in node and node.get("additionalProperties") is not False:
                open_patterns.append(node)
            for inner in node.values():
                walk(inner)
        elif isinstance(node, list):
            for inner in node:
                walk(inner)

    walk(embedded_api.client.get("/openapi.json").json())
    assert open_patterns == []
