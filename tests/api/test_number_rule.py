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
