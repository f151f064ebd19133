"""The per-model-version serving metrics (``tastebud.monitoring.serving``) as a request
records them: through the API, the list's latency, score and items land under the version
that ranked it."""

from __future__ import annotations

from pathlib import Path

from api.gateway_testing import TestClient, make_keys
from serving_world import build_world

from tastebud.api.app import create_app
from tastebud.observability import metrics


def sample(name: str, version: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"model_version": version, **labels})
    return value or 0.0


def test_a_ranked_request_is_recorded_under_its_model_version(tmp_path: Path) -> None:
    world = build_world(tmp_path, online_url=None)
    try:
        keys = make_keys(world.stores.database)
        version = world.version
        before = sample("tastebud_model_served_lists_total", version, empty="false")
        latency = sample("tastebud_model_serving_latency_seconds_count", version)
        with TestClient(create_app(world.settings), raise_server_exceptions=True) as http:
            user = world.model.users_.id_of([0])[0]
            response = http.get(
                f"/v1/users/{user}/recommendations",
                params={"k": 5},
                headers={"X-API-Key": keys["read"]},
            )
        assert response.status_code == 200 and response.json()["model_version"] == version
        assert sample("tastebud_model_served_lists_total", version, empty="false") == before + 1
        assert sample("tastebud_model_serving_latency_seconds_count", version) == latency + 1
        assert sample("tastebud_model_served_items_count", version) >= 5
    finally:
        world.stores.close()
