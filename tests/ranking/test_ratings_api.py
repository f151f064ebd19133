"""``GET /v1/users/{id}/ratings`` over HTTP: predictions from a registered rating model,
fallbacks for unknown users and items, the read scope, 422 for bad ``items`` and 409 when
the serving model predicts no ratings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api.gateway_testing import TestClient, make_keys
from interaction_data import clustered_log
from serving_world import World, build_world, register

from tastebud.api.app import create_app
from tastebud.api.routes.ratings import MAX_ITEMS
from tastebud.models import make_model
from tastebud.models.rating import RatingRecommender
from tastebud.training.rating import ratings_matrix


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = build_world(tmp_path, online_url=None)  # production: an ALS model
    yield world
    world.stores.close()


@pytest.fixture
def keys(world: World) -> dict[str, str]:
    return make_keys(world.stores.database)


def rating_model() -> RatingRecommender:
    model = make_model("biased-mf", factors=8, epochs=60, learning_rate=0.03)
    fitted = model.fit(ratings_matrix(clustered_log()))  # ratings 5 in-cluster, 1 outside
    assert isinstance(fitted, RatingRecommender)
    return fitted


def get(client: TestClient, key: str | None, user: str, **params: object):
    headers = {} if key is None else {"X-API-Key": key}
    return client.get(f"/v1/users/{user}/ratings", params=params, headers=headers)


def test_a_model_without_ratings_is_a_409(world: World, keys: dict[str, str]) -> None:
    with TestClient(create_app(world.settings)) as client:
        response = get(client, keys["read"], "u0", items="i0,i1")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_a_rating_model" and "--objective rating" in error["message"]


def test_ratings_from_a_rating_model(world: World, keys: dict[str, str]) -> None:
    model = rating_model()
    version = register(world.registry, model, datetime(2023, 12, 31, tzinfo=UTC))
    with TestClient(create_app(world.settings)) as client:
        response = get(client, keys["read"], "u0", items="i0,i1,nope", extra="ignored")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == version and body["known_user"] is True
        assert body["rating_scale"] == [1.0, 5.0]
        by_item = {item["item_id"]: item for item in body["items"]}
        assert list(by_item) == ["i0", "i1", "nope"]
        # u0 and i0 are in cluster 0 (rated 5 there); i1 is in cluster 1 (rated 1).
        assert by_item["i0"]["rating"] > by_item["i1"]["rating"] + 1.0
        assert by_item["i0"]["fallback"] is None and by_item["i0"]["known_item"] is True
        assert by_item["nope"] == {
            "item_id": "nope",
            "rating": pytest.approx(
                model.global_mean_ + model.user_bias_[model.users_.index_of("u0")], abs=1e-3
            ),
            "known_item": False,
            "fallback": "user_bias",
        }
        stranger = get(client, keys["read"], "stranger", items="i0, nope").json()
        assert stranger["known_user"] is False
        assert [i["fallback"] for i in stranger["items"]] == ["item_bias", "global_mean"]
        assert stranger["items"][1]["rating"] == pytest.approx(model.global_mean_, abs=1e-3)

        # The rating model also ranks: the serving pipeline orders by predicted rating.
        listed = client.get(
            "/v1/users/u0/recommendations", params={"k": 5}, headers={"X-API-Key": keys["read"]}
        )
        assert listed.status_code == 200 and listed.json()["model_version"] == version
        assert len(listed.json()["items"]) == 5

        assert get(client, None, "u0", items="i0").status_code == 401
        assert get(client, keys["ingest"], "u0", items="i0").status_code == 403

        too_many = ",".join(f"i{n}" for n in range(MAX_ITEMS + 1))
        for params, code in [
            ({"items": too_many}, "too_many_items"),
            ({"items": ","}, "invalid_items"),
            ({"items": "i0,,i1"}, "invalid_items"),
            # Repeated, the last one alone was answered and the others silently dropped.
            ({"items": ["i0", "i1"]}, "repeated_parameter"),  # as any one-value parameter
            ({"items": "i" * 300}, "id_too_long"),
            ({"items": "bad id"}, "invalid_id"),
            ({}, "invalid_request"),
        ]:
            response = get(client, keys["read"], "u0", **params)
            assert response.status_code == 422, (params, response.text)
            error = response.json()["error"]
            named = error["message"] + str(error.get("details"))
            assert error["code"] == code and "items" in named, error
