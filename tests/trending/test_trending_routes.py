"""GET /v1/trending on a minimal app: reads what the trending job published."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from tastebud.api.routes.trending import router
from tastebud.jobs.outputs import publish_lists
from tastebud.stores.online import MemoryOnlineStore
from tastebud.trending.lists import trending_items

with warnings.catch_warnings():
    # Starlette warns when it finds httpx rather than httpx2; the client works with either.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

AS_OF = datetime(2025, 1, 10, tzinfo=UTC)


def _entries(*ids: str) -> list[dict[str, object]]:
    return [
        {"item_id": item, "score": 10.0 - rank, "lift": 3.0, "rank": rank}
        for rank, item in enumerate(ids, start=1)
    ]


@pytest.fixture
def online() -> MemoryOnlineStore:
    return MemoryOnlineStore()


@pytest.fixture
def client(online: MemoryOnlineStore) -> TestClient:
    app = FastAPI()
    app.state.online = online
    app.include_router(router)
    return TestClient(app)


def test_nothing_published_is_a_clear_404(client: TestClient) -> None:
    response = client.get("/v1/trending")
    assert response.status_code == 404
    assert "tastebud jobs run trending" in response.json()["detail"]


def test_serves_the_published_lists(client: TestClient, online: MemoryOnlineStore) -> None:
    lists = {"*": _entries("a", "b", "c"), "rock": _entries("b")}
    assert publish_lists(None, online, "trending", lists, as_of=AS_OF, version="v1")
    body = client.get("/v1/trending", params={"k": 2}).json()
    assert [item["item_id"] for item in body["items"]] == ["a", "b"]
    assert body["category"] == "*" and body["as_of"] == AS_OF.isoformat()
    assert body["computed_at"]
    rock = client.get("/v1/trending", params={"category": "rock"}).json()
    assert [item["item_id"] for item in rock["items"]] == ["b"]
    jazz = client.get("/v1/trending", params={"category": "jazz"})
    assert jazz.status_code == 200 and jazz.json()["items"] == []
    assert trending_items(online, "rock").items == lists["rock"]


def test_a_new_publication_replaces_old_categories(
    client: TestClient, online: MemoryOnlineStore
) -> None:
    publish_lists(
        None,
        online,
        "trending",
        {"*": _entries("a"), "rock": _entries("a")},
        as_of=AS_OF,
        version="v1",
    )
    later = datetime(2025, 1, 11, tzinfo=UTC)
    publish_lists(None, online, "trending", {"*": _entries("z")}, as_of=later, version="v2")
    assert client.get("/v1/trending", params={"category": "rock"}).json()["items"] == []
    assert client.get("/v1/trending").json()["items"][0]["item_id"] == "z"


@pytest.mark.parametrize("params", [{"k": 0}, {"k": 501}, {"k": "x"}, {"category": "c" * 129}])
def test_bad_parameters_are_422(client: TestClient, params: dict[str, object]) -> None:
    assert client.get("/v1/trending", params=params).status_code == 422
