"""The recommendation routes over HTTP: shapes, bad input (always a 4xx or a documented
fallback, never a 500), real time through the gateway and across app instances, degraded
answers when Redis or PostgreSQL reads fail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api.gateway_testing import TestClient, make_keys
from serving_world import World, build_world, cluster

from tastebud.api.app import create_app
from tastebud.config import Settings
from tastebud.jobs.outputs import publish_lists


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = build_world(tmp_path, online_url=None)  # the shared SQLite online store
    yield world
    world.stores.close()


class Client:
    def __init__(self, settings: Settings, keys: dict[str, str]) -> None:
        self.http = TestClient(create_app(settings), raise_server_exceptions=True)
        self.keys = keys

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(path, params=params, headers={"X-API-Key": self.keys["read"]})

    def post(self, path: str, body: Any, scope: str = "read") -> Any:
        return self.http.post(path, json=body, headers={"X-API-Key": self.keys[scope]})


@pytest.fixture
def keys(world: World) -> dict[str, str]:
    return make_keys(world.stores.database)


@pytest.fixture
def client(world: World, keys: dict[str, str]) -> Iterator[Client]:
    client = Client(world.settings, keys)
    with client.http:
        yield client


def item_ids(response: Any) -> list[str]:
    return item_ids_of(response.json())


def item_ids_of(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def described(item: dict[str, Any]) -> bool:
    """The catalog's title and creator of a serving-world item."""
    item_id = item["item_id"]
    if item_id.startswith("new"):
        number = int(item_id[3:])
        expected = (f"Song {100 + number}", f"newcomer{number}")
    else:
        number = int(item_id[1:])
        expected = (f"Song {number}", f"artist{number % 12}")
    return (item["title"], item["creator"]) == expected


def test_user_recommendations(client: Client, world: World) -> None:
    response = client.get("/v1/users/u0/recommendations", k=5)
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "u0" and body["model_version"] == world.version
    assert body["degraded"] is False and body["segment"] == "warm"
    assert len(body["items"]) == 5
    first = body["items"][0]
    assert set(first) == {"item_id", "score", "sources", "explanation", "title", "creator"}
    assert "cf" in first["sources"] and first["explanation"]
    number = int(first["item_id"][1:])
    assert (first["title"], first["creator"]) == (f"Song {number}", f"artist{number % 12}")
    quiet = client.get("/v1/users/u0/recommendations", k=5, explain="false").json()
    assert all(item["explanation"] is None for item in quiet["items"])
    bare = client.get("/v1/users/u0/recommendations", k=5, metadata="false").json()
    assert set(bare["items"][0]) == {"item_id", "score", "sources", "explanation"}
    assert item_ids_of(bare) == item_ids_of(body)


def test_filters_in_the_query(client: Client) -> None:
    rock = client.get("/v1/users/u1/recommendations", k=5, category="rock")
    assert rock.status_code == 200 and all(cluster(i) == 0 for i in item_ids(rock))
    top = item_ids(client.get("/v1/users/u1/recommendations", k=3))
    excluded = client.get("/v1/users/u1/recommendations", k=10, exclude=f"{top[0]},{top[1]}")
    assert not {top[0], top[1]} & set(item_ids(excluded))


def test_unknown_user_gets_the_popular_list(client: Client) -> None:
    response = client.get("/v1/users/stranger/recommendations", k=4)
    assert response.status_code == 200
    body = response.json()
    assert body["segment"] == "unknown" and len(body["items"]) == 4
    assert all(set(item["sources"]) & {"popular", "trending", "new"} for item in body["items"])


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/users/u0/recommendations", {"k": 0}, 422, "invalid_k"),
        ("/v1/users/u0/recommendations", {"k": 100000}, 422, "invalid_k"),
        ("/v1/users/u0/recommendations", {"k": "many"}, 422, "invalid_request"),
        ("/v1/users/u0/recommendations", {"explain": "perhaps"}, 422, "invalid_request"),
        ("/v1/users/u0/recommendations", {"category": "polka"}, 404, "unknown_category"),
        ("/v1/users/u0/recommendations", {"category": "x" * 500}, 422, "invalid_request"),
        ("/v1/users/u0/recommendations", {"exclude": "i" * 200}, 422, "id_too_long"),
        (f"/v1/users/{'u' * 300}/recommendations", {}, 422, "id_too_long"),
        ("/v1/users/bad%20id/recommendations", {}, 422, "invalid_id"),
        ("/v1/items/i3/similar", {"k": -1}, 422, "invalid_k"),
        ("/v1/items/nothing-like-it/similar", {}, 404, "unknown_item"),
        ("/v1/popular", {"category": "polka"}, 404, "unknown_category"),
        ("/v1/popular", {"k": 100000}, 422, "invalid_k"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    client: Client, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    response = client.get(path, **params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_malformed_query_string_is_not_a_server_error(client: Client) -> None:
    response = client.http.get(
        "/v1/users/u0/recommendations?k=%ZZ&&=&exclude",
        headers={"X-API-Key": client.keys["read"]},
    )
    assert response.status_code < 500


def test_reading_needs_the_read_scope(client: Client) -> None:
    response = client.http.get(
        "/v1/users/u0/recommendations", headers={"X-API-Key": client.keys["ingest"]}
    )
    assert response.status_code == 403
    assert client.http.get("/v1/popular").status_code == 401


def test_similar_and_popular(client: Client, world: World) -> None:
    similar = client.get("/v1/items/i3/similar", k=5)
    assert similar.status_code == 200
    body = similar.json()
    assert body["model_version"] == world.version and len(body["items"]) == 5
    assert "i3" not in item_ids(similar)
    assert sum(cluster(i) == 0 for i in item_ids(similar)) >= 4
    assert all(described(item) for item in body["items"])
    popular = client.get("/v1/popular", k=3, category="jazz")
    assert popular.status_code == 200 and len(popular.json()["items"]) == 3
    assert all(cluster(i) == 1 for i in item_ids(popular))
    assert all(described(item) for item in popular.json()["items"])
    entries = [
        {"item_id": i, "score": 5.0, "lift": 2.0, "rank": n} for n, i in enumerate(["i4", "i9"], 1)
    ]
    publish_lists(
        None, world.stores.online, "trending", {"*": entries}, as_of=datetime.now(UTC), version="v1"
    )
    trending = client.get("/v1/trending", k=2)
    assert trending.status_code == 200, trending.text
    assert [described(item) for item in trending.json()["items"]] == [True, True]
    for path in ("/v1/items/i3/similar", "/v1/popular", "/v1/trending"):
        bare = client.get(path, k=3, metadata="false").json()["items"]
        assert bare and not {"title", "creator"} & {name for item in bare for name in item}


def test_batch_and_anonymous_session(client: Client) -> None:
    batch = client.post("/v1/recommendations", {"users": ["u0", "u1", "nobody"], "k": 3})
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert [r["user_id"] for r in results] == ["u0", "u1", "nobody"]
    assert [r["segment"] for r in results] == ["warm", "warm", "unknown"]
    assert all(described(item) for result in results for item in result["items"])
    bare = client.post("/v1/recommendations", {"users": ["u0"], "k": 3, "metadata": False})
    assert "title" not in bare.json()["results"][0]["items"][0]
    session = client.post(
        "/v1/recommendations", {"recent_items": ["i0", "i3", "i6", "i9", "i12"], "k": 5}
    )
    assert session.status_code == 200
    (result,) = session.json()["results"]
    assert result["user_id"] is None and len(result["items"]) == 5
    assert not {"i0", "i3", "i6", "i9", "i12"} & {i["item_id"] for i in result["items"]}


def test_request_ranking_overrides(client: Client) -> None:
    plain = {"mmr": {"enabled": False}, "creator_cap": {"enabled": False}}
    body = {"users": ["u0"], "k": 10, "ranking": plain}
    a = client.post("/v1/recommendations", body).json()["results"][0]
    body["ranking"] = {"mmr": {"diversity": 1.0}}
    b = client.post("/v1/recommendations", body).json()["results"][0]
    assert [i["item_id"] for i in a["items"]] != [i["item_id"] for i in b["items"]]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"users": ["u0"], "recent_items": ["i1"]}, "invalid_request"),
        ({"k": 5}, "invalid_request"),
        ({"users": []}, "invalid_users"),
        ({"users": ["u0"], "ranking": {"mmr": {"diversity": 7}}}, "invalid_ranking"),
        ({"users": ["u0"], "ranking": {"no_such_stage": {}}}, "invalid_ranking"),
        ({"users": ["u0"], "k": 0}, "invalid_request"),
        ({"users": ["bad id"]}, "invalid_id"),
        ({"users": ["u0"], "surprise": True}, "invalid_request"),
    ],
)
def test_bad_batch_requests(client: Client, body: dict[str, Any], code: str) -> None:
    response = client.post("/v1/recommendations", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ('{"recency": {"half_life_days": 1e999}}', "recency.half_life_days"),
        ('{"candidates": {"fresh_days": 1e999}}', "candidates.fresh_days"),
    ],
)
def test_a_ranking_override_that_overflows_to_infinity_is_refused(
    client: Client, override: str, field: str
) -> None:
    """Python's parser reads 1e999 as infinity: it is no number a setting can hold."""
    body = f'{{"users": ["u0"], "ranking": {override}}}'
    headers = {"X-API-Key": client.keys["read"], "Content-Type": "application/json"}
    response = client.http.post("/v1/recommendations", content=body, headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_ranking"
    assert field in error["message"] and "finite" in error["message"], error["message"]


def test_an_event_changes_the_next_list_on_another_instance(
    world: World, keys: dict[str, str]
) -> None:
    """Two app instances over one home stand for two server workers: an event accepted by
    one changes the list the other serves next (the shared online store carries it)."""
    with Client(world.settings, keys).http as first, Client(world.settings, keys).http as other:
        read = {"X-API-Key": keys["read"]}
        before = item_ids(other.get("/v1/users/u2/recommendations?k=5", headers=read))
        event = {
            "event_id": "rt-1",
            "user_id": "u2",
            "item_id": before[0],
            "event_type": "play",
            "timestamp": datetime.now(UTC).isoformat(),
        }
        accepted = first.post("/v1/events", json=event, headers={"X-API-Key": keys["ingest"]})
        assert accepted.status_code in (200, 202), accepted.text
        acknowledged = time.monotonic()
        after = item_ids(other.get("/v1/users/u2/recommendations?k=5", headers=read))
        assert time.monotonic() - acknowledged < 1.0
        assert before[0] not in after and after != before


def test_redis_down_gives_a_degraded_list_not_an_error(world: World, keys: dict[str, str]) -> None:
    settings = world.settings.model_copy(update={"online_url": "redis://127.0.0.1:1/0"})
    settings.__dict__.pop("resolved_online_url", None)
    client = Client(settings, keys)
    with client.http:
        response = client.get("/v1/users/u0/recommendations", k=5)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["degraded"] is True and "recent_activity" in body["degraded_reasons"]
        assert len(body["items"]) == 5 and body["model_version"] == world.version
        popular = client.get("/v1/popular", k=3)
        assert popular.status_code == 200 and popular.json()["degraded"] is True
        assert len(popular.json()["items"]) == 3


def test_postgres_reads_failing_give_a_degraded_list(tmp_path: Path, postgres_url: str) -> None:
    # Keys are cached (as by default): authenticating must not need the database either.
    gateway = {"key_cache_seconds": 300.0}
    world = build_world(tmp_path, online_url=None, database_url=postgres_url, gateway=gateway)
    keys = make_keys(world.stores.database)
    client = Client(world.settings.model_copy(), keys)
    try:
        with client.http:
            assert client.get("/v1/users/u0/recommendations", k=5).json()["degraded"] is False
            schema = postgres_url.split("search_path%3D")[-1]
            with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as connection:
                connection.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_gone"')
            try:
                service = client.http.app.state.recommendations  # type: ignore[attr-defined]
                service.lifecycle.expire_catalog()
                service.refresh()  # what the watcher does on its next poll
                response = client.get("/v1/users/u0/recommendations", k=5)
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["degraded"] is True and body["degraded_reasons"] == ["catalog"]
                assert len(body["items"]) == 5
            finally:
                with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as connection:
                    connection.execute(f'ALTER SCHEMA "{schema}_gone" RENAME TO "{schema}"')
    finally:
        world.stores.close()
