"""PUT /v1/items and /v1/users (batch upserts with per-entry results) and the reads."""

from __future__ import annotations

from api.gateway_testing import Api


def test_items_are_upserted_in_batches_with_per_entry_results(api: Api) -> None:
    items = [
        {"item_id": "song-1", "title": "One", "categories": ["jazz"], "attributes": {"bpm": 90}},
        {"item_id": "bad id!", "title": "Two"},
        {"item_id": "song-3", "created_at": "2024-02-01T00:00:00Z", "active": False},
        {"title": "no id"},
        "not an object",
    ]
    response = api.client.put("/v1/items", json={"items": items}, headers=api.headers())
    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["upserted"], document["rejected"]) == (2, 3)
    statuses = [(r["status"], r["reasons"]) for r in document["results"]]
    assert statuses == [
        ("upserted", []),
        ("rejected", ["invalid_id"]),
        ("upserted", []),
        ("rejected", ["missing_field"]),
        ("rejected", ["invalid_type"]),
    ]
    assert api.database.catalog.count_items() == 2
    assert api.database.catalog.get_item("song-3").active is False  # type: ignore[union-attr]
    renamed = {"items": [{"item_id": "song-1", "title": "Uno"}]}
    assert api.client.put("/v1/items", json=renamed, headers=api.headers()).status_code == 200
    fetched = api.client.get("/v1/items/song-1", headers=api.headers("read"))
    assert fetched.status_code == 200
    assert fetched.json()["title"] == "Uno" and fetched.json()["categories"] == []


def test_users_round_trip(api: Api) -> None:
    users = {"users": [{"user_id": "u1", "attributes": {"country": "FR"}}]}
    assert api.client.put("/v1/users", json=users, headers=api.headers()).json()["upserted"] == 1
    fetched = api.client.get("/v1/users/u1", headers=api.headers("read")).json()
    assert fetched == {"user_id": "u1", "created_at": None, "attributes": {"country": "FR"}}
    missing = api.client.get("/v1/users/nobody", headers=api.headers("read"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "user_not_found"


def test_bad_catalog_bodies(embedded_api: Api) -> None:
    client, headers = embedded_api.client, embedded_api.headers()
    cases = [
        ({"items": "nope"}, 400, "invalid_body"),
        ({"users": [{"user_id": "u1"}]}, 400, "invalid_body"),  # users sent to /v1/items
        ({"items": []}, 400, "empty_batch"),
        ({"items": [{"item_id": "i1", "categories": "jazz"}]}, 422, "invalid_items"),
    ]
    for body, status, code in cases:
        response = client.put("/v1/items", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
