"""API keys and scopes, rate limits, CORS, and no secrets in the logs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api.gateway_testing import Api

EVENT = {
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "i1",
    "event_type": "like",
    "timestamp": "2025-01-01T00:00:00Z",
}


def test_missing_and_unknown_keys_are_401(embedded_api: Api) -> None:
    client = embedded_api.client
    missing = client.post("/v1/events", json=EVENT)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.post("/v1/events", json=EVENT, headers={"X-API-Key": "tb_nope_nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    basic = client.post("/v1/events", json=EVENT, headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401 and basic.json()["error"]["code"] == "missing_api_key"
    assert embedded_api.database.events.count() == 0


def test_bearer_and_header_keys_both_work(embedded_api: Api) -> None:
    key = embedded_api.keys["ingest"]
    bearer = embedded_api.client.post(
        "/v1/events", json=EVENT, headers={"Authorization": f"Bearer {key}"}
    )
    assert bearer.status_code == 202
    header = embedded_api.client.post("/v1/events", json=EVENT, headers={"X-API-Key": key})
    assert header.json()["results"][0]["status"] == "duplicate"
    lower = embedded_api.client.post(
        "/v1/events", json=EVENT, headers={"Authorization": f"bearer  {key} "}
    )
    assert lower.status_code == 202  # the scheme is case-insensitive, spaces are trimmed
    empty = embedded_api.client.post("/v1/events", json=EVENT, headers={"Authorization": "Bearer"})
    assert empty.status_code == 401 and empty.json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("ingest", "POST", "/v1/events", True),
        ("read", "POST", "/v1/events", False),
        ("admin", "POST", "/v1/events", True),
        ("ingest", "PUT", "/v1/items", True),
        ("read", "PUT", "/v1/users", False),
        ("read", "GET", "/v1/items/i1", True),
        ("ingest", "GET", "/v1/items/i1", False),
        ("admin", "GET", "/v1/users/u1", True),
    ],
)
def test_scopes(embedded_api: Api, scope: str, method: str, path: str, allowed: bool) -> None:
    bodies = {
        "/v1/events": EVENT,
        "/v1/items": {"items": [{"item_id": "i1"}]},
        "/v1/users": {"users": [{"user_id": "u1"}]},
    }
    response = embedded_api.client.request(
        method, path, json=bodies.get(path), headers=embedded_api.headers(scope)
    )
    if allowed:
        assert response.status_code in (200, 202, 404), response.text
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"


def test_a_revoked_key_is_refused(embedded_api: Api) -> None:
    assert embedded_api.post_events(EVENT).status_code == 202
    (record,) = [
        key for key in embedded_api.database.gateway.keys.list_keys() if key.scopes == ("ingest",)
    ]
    assert embedded_api.database.gateway.keys.revoke(record.key_id)
    refused = embedded_api.post_events(EVENT)  # key_cache_seconds = 0 in these tests
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def test_rate_limit_answers_429_with_retry_after(api_factory: Callable[..., Api]) -> None:
    api = api_factory(rate_limit_per_second=0.5, rate_limit_burst=3)
    statuses = [api.post_events(EVENT).status_code for _ in range(4)]
    assert statuses[:3] == [202, 202, 202] and statuses[3] == 429
    limited = api.post_events(EVENT)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # Buckets are per key: another key is not limited.
    assert api.post_events(EVENT, scope="admin").status_code == 202
    # A key's own rate overrides the default.
    created = api.database.gateway.keys.create(["ingest"], "fast", rate_per_second=1000, burst=50)
    assert created is not None
    fast = {"X-API-Key": created[1]}
    codes = {api.client.post("/v1/events", json=EVENT, headers=fast).status_code for _ in range(10)}
    assert codes == {202}


def test_auth_can_be_turned_off(api_factory: Callable[..., Api]) -> None:
    api = api_factory(auth=False)
    assert api.client.post("/v1/events", json=EVENT).status_code == 202


def test_cors_is_off_by_default_and_configurable(api_factory: Callable[..., Api]) -> None:
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    closed = api_factory()
    response = closed.client.options("/v1/events", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    opened = api_factory(cors_origins=["https://shop.example"])
    response = opened.client.options("/v1/events", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-api-key" in response.headers["access-control-allow-headers"].lower()
    other = opened.client.options(
        "/v1/events", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_no_key_or_payload_in_logs(embedded_api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    secret_value = "hunter2-very-secret"
    key = embedded_api.keys["ingest"]
    event = {**EVENT, "context": {"password": secret_value}}
    embedded_api.post_events(event)
    embedded_api.post_events({**event, "event_type": "jump"})  # rejected: dead-lettered
    embedded_api.client.post("/v1/events", json=event, headers={"X-API-Key": key + "x"})
    embedded_api.client.post(
        "/v1/events", content=b'{"broken": "' + secret_value.encode(), headers={"X-API-Key": key}
    )
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    assert "request" in logs  # the request log lines are there...
    assert key not in logs and key[:20] not in logs  # ...without the key
    assert secret_value not in logs  # ...or the payload
