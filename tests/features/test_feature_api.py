"""POST /v1/features through the real app factory: read scope, values, missing and unknown
references reported, bad bodies as 4xx, and an unreachable Redis answered from offline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from api.gateway_testing import TestClient, make_keys
from feature_fixtures import TEST_MANIFEST

from tastebud.api.app import create_app
from tastebud.config import Settings, load_settings
from tastebud.features.store import open_feature_store
from tastebud.stores import open_database, open_online_store

TS = pa.timestamp("us", tz="UTC")


def settings_for(home: Path, online_url: str) -> Settings:
    manifest = home.parent / "manifests" / "test.yaml"
    manifest.parent.mkdir(exist_ok=True)
    manifest.write_text(TEST_MANIFEST)
    return load_settings(
        home=home,
        online_url=online_url,
        gateway={"key_cache_seconds": 0.0},
        features={"manifests": [str(manifest)]},
    )


def seed(settings: Settings, kv_url: str, *, online: bool = True) -> None:
    now = datetime.now(UTC)
    with open_online_store(kv_url) as kv, open_feature_store(settings, kv) as features:
        view = features.registry.view("item_stats")
        table = pa.table(
            {
                "entity_id": ["i1", "i2"],
                "event_timestamp": pa.array([now, now], TS),
                "price": [9.5, 3.0],
                "label": ["a", "b"],
                "active": [True, False],
            },
            schema=view.arrow_schema(),
        )
        features.offline.write(view, table, now)
        if online:
            features.online.write(view, table)


@pytest.fixture
def client_for(home: Path) -> Iterator:  # type: ignore[type-arg]
    opened: list[TestClient] = []

    def make(settings: Settings) -> tuple[TestClient, dict[str, str]]:
        with open_database(settings.resolved_database_url) as database:
            keys = make_keys(database)
        client = TestClient(create_app(settings))
        client.__enter__()
        opened.append(client)
        return client, keys

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_features_for_entities(home: Path, client_for) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite://{home / 'online.db'}"
    settings = settings_for(home, url)
    seed(settings, url)
    client, keys = client_for(settings)
    body = {
        "entities": {"item": ["i1", "i2", "i404"], "planet": ["mars"]},
        "features": ["item_stats:price", "item_stats:active", "item_stats:nope", "ghost:x"],
    }
    response = client.post("/v1/features", json=body, headers={"X-API-Key": keys["read"]})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["values"]["item"]["i1"] == {"item_stats:price": 9.5, "item_stats:active": True}
    assert data["values"]["item"]["i2"]["item_stats:active"] is False
    assert data["values"]["item"]["i404"] == {"item_stats:price": None, "item_stats:active": None}
    assert {m["entity_id"] for m in data["missing"]} == {"i404"}
    assert data["unknown_features"] == ["item_stats:nope", "ghost:x"]
    assert data["unknown_entities"] == ["planet"]
    assert data["fallbacks"] == 1
    # The read scope is required.
    denied = client.post("/v1/features", json=body, headers={"X-API-Key": keys["ingest"]})
    assert denied.status_code == 403
    assert client.post("/v1/features", json=body).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"entities": {"item": ["i1"]}, "features": []},
        {"entities": {"item": ["bad id with spaces"]}, "features": ["item_stats:price"]},
        {"entities": {"item": "i1"}, "features": ["item_stats:price"]},
        {"entities": {"item": ["i1"]}, "features": ["item_stats:price"], "extra": 1},
        {"entities": {"item": [f"i{n}" for n in range(1001)]}, "features": ["item_stats:price"]},
        {"features": ["item_stats:price"]},
        [],
    ],
)
def test_bad_bodies_are_4xx(home: Path, client_for, body: object) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(home, "memory://")
    client, keys = client_for(settings)
    response = client.post("/v1/features", json=body, headers={"X-API-Key": keys["read"]})
    assert response.status_code == 422, response.text
    codes = ("invalid_request", "invalid_id", "too_many_entities")
    assert response.json()["error"]["code"] in codes
    broken = client.post(
        "/v1/features",
        content=b"{not json",
        headers={"X-API-Key": keys["read"], "Content-Type": "application/json"},
    )
    assert 400 <= broken.status_code < 500


def test_redis_down_answers_from_offline(home: Path, client_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(home, "redis://127.0.0.1:1/0")
    seed(settings, "memory://", online=False)
    client, keys = client_for(settings)
    response = client.post(
        "/v1/features",
        json={"entities": {"item": ["i1", "i9"]}, "features": ["item_stats:*"]},
        headers={"X-API-Key": keys["read"]},
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["values"]["item"]["i1"]["item_stats:label"] == "a"
    assert data["fallbacks"] == 2 and [m["entity_id"] for m in data["missing"]] == ["i9"] * 3


def test_openapi_documents_the_route(home: Path, client_for) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_for(settings_for(home, "memory://"))
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/features"]["post"]
    assert "ranking" in operation["requestBody"]["content"]["application/json"]["examples"]
    assert {"401", "403", "422", "503"} <= set(operation["responses"])
