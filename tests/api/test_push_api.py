"""``POST/DELETE /v1/push/subscriptions`` on every backend, and the app's own routes."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.gateway_testing import Api
from tastebud.app import app_version
from tastebud.push.vapid import ensure_keys

PATH = "/v1/push/subscriptions"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_subscription(endpoint: str = "https://push.example.net/send/abc") -> dict[str, Any]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64url(point), "auth": b64url(os.urandom(16))},
    }


def test_subscribe_update_and_opt_out(api: Api) -> None:
    sent = browser_subscription()
    body = {"user_id": "u1", "subscription": sent, "timezone": "Europe/Paris"}
    first = api.client.post(PATH, json=body, headers=api.headers())
    assert first.status_code == 201, first.text
    assert first.json() == {"user_id": "u1", "endpoint": sent["endpoint"], "created": True}
    again = api.client.post(PATH, json={**body, "user_id": "u2"}, headers=api.headers())
    assert again.status_code == 200 and again.json()["created"] is False
    push = api.database.push
    stored = push.get(sent["endpoint"])
    assert stored is not None and stored.user_id == "u2" and stored.timezone == "Europe/Paris"
    assert stored.p256dh == sent["keys"]["p256dh"]
    # Only the user's own subscription is removed.
    other = {"user_id": "u1", "endpoint": sent["endpoint"]}
    refused = api.client.request("DELETE", PATH, json=other, headers=api.headers())
    assert refused.status_code == 200 and refused.json() == {"user_id": "u1", "deleted": 0}
    own = {"user_id": "u2", "endpoint": sent["endpoint"]}
    removed = api.client.request("DELETE", PATH, json=own, headers=api.headers())
    assert removed.json() == {"user_id": "u2", "deleted": 1}
    assert push.get(sent["endpoint"]) is None
    repeat = api.client.request("DELETE", PATH, json=own, headers=api.headers())
    assert repeat.status_code == 200 and repeat.json()["deleted"] == 0


def test_replaces_swaps_the_old_endpoint(api: Api) -> None:
    old, new = browser_subscription("https://p.example/old"), browser_subscription()
    api.client.post(PATH, json={"user_id": "u1", "subscription": old}, headers=api.headers())
    body = {"user_id": "u1", "subscription": new, "replaces": old["endpoint"]}
    assert api.client.post(PATH, json=body, headers=api.headers()).status_code == 201
    assert [s.endpoint for s in api.database.push.subscriptions("u1")] == [new["endpoint"]]


def _with(**changes: Any) -> dict[str, Any]:
    subscription = browser_subscription()
    keys = dict(subscription["keys"])
    for name in ("p256dh", "auth"):
        if name in changes:
            keys[name] = changes.pop(name)
    subscription["keys"] = keys
    if "endpoint" in changes:
        subscription["endpoint"] = changes.pop("endpoint")
    return {"user_id": "u1", "subscription": subscription, **changes}


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (_with(endpoint="http://push.example.net/x"), "invalid_subscription", "https"),
        (_with(endpoint="https:///nohost"), "invalid_subscription", "https"),
        (_with(p256dh="not base64 !!"), "invalid_subscription", "p256dh"),
        (_with(p256dh=b64url(b"\x04" + b"\x01" * 64)), "invalid_subscription", "P-256"),
        (_with(auth=b64url(b"short")), "invalid_subscription", "16 bytes"),
        (_with(timezone="Mars/Olympus"), "invalid_timezone", "Mars/Olympus"),
        (_with(replaces="ftp://old"), "invalid_subscription", "replaces"),
        ({**_with(), "user_id": "bad id"}, "invalid_id", "user_id"),
        ({"user_id": "u1"}, "invalid_request", "subscription"),
        ({**_with(), "extra": 1}, "invalid_request", "extra"),
    ],
)
def test_bad_subscriptions_are_refused_with_a_reason(
    embedded_api: Api, body: dict[str, Any], code: str, says: str
) -> None:
    response = embedded_api.client.post(PATH, json=body, headers=embedded_api.headers())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and says in response.text
    assert embedded_api.database.push.count() == 0


def test_subscriptions_need_an_ingest_key(embedded_api: Api) -> None:
    body = {"user_id": "u1", "subscription": browser_subscription()}
    assert embedded_api.client.post(PATH, json=body).status_code == 401
    read_only = embedded_api.client.post(PATH, json=body, headers=embedded_api.headers("read"))
    assert read_only.status_code == 403
    malformed = embedded_api.client.post(
        PATH,
        content=b"{nope",
        headers={**embedded_api.headers(), "content-type": "application/json"},
    )
    assert malformed.status_code in (400, 422) and "error" in malformed.json()


def test_the_app_is_served_with_its_config(embedded_api: Api) -> None:
    client = embedded_api.client
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"
    shell = client.get("/app/")
    assert shell.status_code == 200 and "<title>tastebud</title>" in shell.text
    worker = client.get("/app/sw.js")
    assert worker.headers["service-worker-allowed"] == "/app/"
    assert worker.headers["cache-control"] == "no-cache"
    assert f'const VERSION = "{app_version()}";' in worker.text
    assert client.get("/app/manifest.webmanifest").json()["start_url"] == "/app/"
    assert client.get("/app/nothing.js").status_code == 404
    config = client.get("/app/config.json").json()
    assert config["vapid_public_key"] is None
    assert config["queue"] == {"max_events": 500, "max_age_seconds": 7 * 24 * 3600.0}
    assert "play" in config["event_types"] and "click" in config["event_types"]
    keys, _ = ensure_keys(embedded_api.database.push)
    assert client.get("/app/config.json").json()["vapid_public_key"] == keys.public_key
    assert "/app/" not in client.get("/openapi.json").json()["paths"]
