"""/healthz, /readyz and /metrics; enrichment degrading (not failing) when its store is down."""

from __future__ import annotations

from collections.abc import Callable

from api.gateway_testing import Api, TestClient, gateway_settings, make_keys
from tastebud.api.app import create_app
from tastebud.stores import open_database


def test_health_ready_and_metrics(embedded_api: Api) -> None:
    client = embedded_api.client
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "events": "ok",
            "catalog": "ok",
            "online": "ok",
            "dead_letters": "ok",
            "model": "ok",
        },
    }
    embedded_api.post_events(
        {
            "events": [
                {"user_id": "u", "item_id": "i", "event_type": "play", "timestamp": 1.7e9},
                {"user_id": "u", "item_id": "i", "event_type": "jump", "timestamp": 1.7e9},
            ]
        }
    )
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in (
        "tastebud_feedback_enriched_count_total",
        "tastebud_feedback_enrich_fail_count_total",
        'tastebud_feedback_dlq_count_total{kind="invalid"}',
        "tastebud_feedback_retry_success_count_total",
        'tastebud_feedback_dlq_size_count{kind="invalid"} 1.0',
        'tastebud_feedback_dlq_dropped_count{cause="cap"} 0.0',
        'tastebud_http_requests_total{method="POST",route="/v1/events",status="202"}',
        "tastebud_feedback_enrich_seconds_bucket",
    ):
        assert name in text, name


def test_a_down_online_store_makes_readyz_503_but_events_still_flow(home: object) -> None:
    from pathlib import Path

    assert isinstance(home, Path)
    settings = gateway_settings(home).model_copy(
        update={"online_url": "redis://127.0.0.1:1/0?prefix=x:"}
    )
    with open_database(settings.resolved_database_url) as database:
        key = make_keys(database)["ingest"]
        with TestClient(create_app(settings)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert ready.json()["checks"]["online"] != "ok"
            assert ready.json()["checks"]["events"] == "ok"
            event = {"user_id": "u", "item_id": "i", "event_type": "play", "timestamp": 1.7e9}
            response = client.post(
                "/v1/events", json=event, headers={"X-API-Key": key, "User-Agent": "curl/8"}
            )
            assert response.status_code == 202
            assert response.json()["accepted"] == 1
            metrics = client.get("/metrics").text
        (stored,) = database.events.scan()
        assert stored.session_id is None  # sessions live in the online store
        assert stored.device_type is not None  # the rest of the enrichment still happened
        fails = [
            line
            for line in metrics.splitlines()
            if line.startswith("tastebud_feedback_enrich_fail_count_total")
        ]
        assert fails and float(fails[0].split()[-1]) >= 1


def test_openapi_is_complete(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_batch_events=250)
    schema = api.client.get("/openapi.json").json()
    post = schema["paths"]["/v1/events"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "422", "429", "503"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]
    assert body["examples"]["one"]["value"]["event_type"] == "play"
    components = schema["components"]["schemas"]
    assert "play" in components["EventIn"]["properties"]["event_type"]["enum"]
    assert components["EventBatchIn"]["properties"]["events"]["maxItems"] == 250
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schema["components"]["securitySchemes"])
    # Every route that checks a key says so, including those of routers included with it.
    keyed = [{"APIKeyHeader": []}, {"HTTPBearer": []}]
    assert post["security"] == keyed
    assert schema["paths"]["/v1/users/{user_id}/recommendations"]["get"]["security"] == keyed
    assert "security" not in schema["paths"]["/healthz"]["get"]
    for path in ("/v1/items", "/v1/users"):
        assert (
            "example" in schema["paths"][path]["put"]["requestBody"]["content"]["application/json"]
        )


def test_trending_is_served_by_the_main_app_with_the_read_scope(embedded_api: Api) -> None:
    from datetime import UTC, datetime

    from tastebud.jobs.outputs import publish_lists

    client = embedded_api.client
    assert client.get("/v1/trending").status_code == 401
    assert client.get("/v1/trending", headers=embedded_api.headers("read")).status_code == 404
    online = client.app.state.tastebud.stores.online
    lists = {"*": [{"item_id": "i1", "score": 7.5, "lift": 3.0, "rank": 1}]}
    as_of = datetime(2025, 1, 1, tzinfo=UTC)
    assert publish_lists(None, online, "trending", lists, as_of=as_of, version="v1")
    served = client.get("/v1/trending?k=5", headers=embedded_api.headers("read"))
    assert served.status_code == 200, served.text
    assert [entry["item_id"] for entry in served.json()["items"]] == ["i1"]


def test_blocking_request_work_runs_on_gateway_threads(home: object) -> None:
    """Each thread keeps its own SQLite connections and malloc arena: the server bounds them
    (issue 16, worker memory under concurrent load) instead of anyio's 40."""
    from pathlib import Path

    import anyio

    assert isinstance(home, Path)
    settings = gateway_settings(home, threads=3)

    async def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    with TestClient(create_app(settings)) as client:
        assert client.portal is not None
        assert client.portal.call(tokens) == 3
