"""One rule for numbers a request carries into a store: JSON has no Infinity or NaN, so a
number too large for a float (``1e999``), which Python's parser reads as infinity, is
refused with 422 ``invalid_number`` naming the field, the entry alone, on every backend.
Before, the embedded store kept it as ``null`` (the client's value silently changed) and
PostgreSQL refused it with its own error text (the bad-input audit)."""

from __future__ import annotations

from api.gateway_testing import Api


def _send(api: Api, method: str, path: str, text: str) -> object:
    """Raw JSON text: ``json.dumps`` would write ``Infinity``, which is not JSON at all."""
    headers = {**api.headers(), "Content-Type": "application/json"}
    return api.client.request(method, path, content=text, headers=headers)


def test_catalog_entries_with_a_number_out_of_range_are_rejected_alone(api: Api) -> None:
    items = (
        '{"items": [{"item_id": "good", "attributes": {"price": 9.5}},'
        ' {"item_id": "big", "attributes": {"price": 1e999}},'
        ' {"item_id": "nested", "attributes": {"sizes": [1, -1e999]}}]}'
    )
    response = _send(api, "PUT", "/v1/items", items)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["upserted", "rejected", "rejected"]
    assert [r["reasons"] for r in results[1:]] == [["invalid_number"]] * 2
    assert "attributes.price" in results[1]["message"]
    assert "attributes.sizes[1]" in results[2]["message"]
    assert "PostgreSQL" not in results[1]["message"]
    assert api.database.catalog.get_item("big") is None
    users = '{"users": [{"user_id": "u-bad", "attributes": {"age": 1e999}}]}'
    only_bad = _send(api, "PUT", "/v1/users", users)
    assert only_bad.status_code == 422, only_bad.text
    assert only_bad.json()["results"][0]["reasons"] == ["invalid_number"]


def test_an_event_context_with_a_number_out_of_range_is_rejected_alone(api: Api) -> None:
    good = '{"user_id": "u1", "item_id": "i1", "event_type": "play", "event_id": "good"}'
    bad = (
        '{"user_id": "u1", "item_id": "i1", "event_type": "play", "event_id": "bad",'
        ' "context": {"position": 1e999}}'
    )
    response = _send(api, "POST", "/v1/events", f'{{"events": [{good}, {bad}]}}')
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert results[0]["status"] == "accepted"
    assert results[1]["reasons"] == ["invalid_number"]
    assert "context.position" in results[1]["message"]
    assert api.database.events.count() == 1


HUGE = "9" * 5_000  # more digits than Python turns into an int (sys.get_int_max_str_digits)


def test_an_integer_with_too_many_digits_is_an_invalid_number_naming_the_field(api: Api) -> None:
    """Python's parser refused the whole body with a message about its own
    ``sys.set_int_max_str_digits()``; the entry alone is now rejected, naming the field."""
    good = '{"user_id": "u1", "item_id": "i1", "event_type": "play", "event_id": "good"}'
    bad = (
        '{"user_id": "u1", "item_id": "i1", "event_type": "play", "event_id": "bad",'
        f' "context": {{"position": -{HUGE}}}}}'
    )
    response = _send(api, "POST", "/v1/events", f'{{"events": [{good}, {bad}]}}')
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert results[0]["status"] == "accepted"
    assert results[1]["reasons"] == ["invalid_number"]
    message = results[1]["message"]
    assert "context.position" in message and "too many digits" in message, message
    assert "sys." not in message
    items = f'{{"items": [{{"item_id": "big", "attributes": {{"plays": {HUGE}}}}}]}}'
    refused = _send(api, "PUT", "/v1/items", items)
    assert refused.status_code == 422, refused.text
    result = refused.json()["results"][0]
    assert result["reasons"] == ["invalid_number"] and "attributes.plays" in result["message"]


def test_a_body_fastapi_parses_names_the_integer_with_too_many_digits(embedded_api: Api) -> None:
    headers = {**embedded_api.headers("admin"), "Content-Type": "application/json"}
    body = f'{{"users": ["u1"], "k": {HUGE}}}'
    response = embedded_api.client.post("/v1/recommendations", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_number", error
    assert "k " in error["message"] and "too many digits" in error["message"], error
    assert "sys." not in error["message"]
