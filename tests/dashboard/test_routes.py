"""The API routes the dashboard reads, on the served world: users and their recent events,
the registry (read; promote and roll back with an admin key, refused without), job runs,
the dead-letter summary, and ``GET /`` pointing at the dashboard and the docs."""

from __future__ import annotations

import httpx
from api.gateway_testing import LiveServer

from dashboard.conftest import ServedWorld
from tastebud.config import load_settings


def _get(served: ServedWorld, path: str, key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key or served.read_key}
    return httpx.get(f"{served.url}{path}", headers=headers, timeout=30)


def test_users_and_their_recent_events_with_item_metadata(served: ServedWorld) -> None:
    listed = _get(served, "/v1/users?limit=5").json()
    assert listed["total"] == 80 and len(listed["users"]) == 5
    assert listed["users"] == sorted(listed["users"])
    after = _get(served, f"/v1/users?after={listed['users'][-1]}&limit=2").json()["users"]
    assert after[0] > listed["users"][-1]
    user = served.active_user()
    events = _get(served, f"/v1/users/{user}/events?limit=7").json()
    assert events["known"] and 0 < len(events["events"]) <= 7
    times = [event["timestamp"] for event in events["events"]]
    assert times == sorted(times, reverse=True)
    assert all(event["title"] and event["creator"] for event in events["events"])
    unknown = _get(served, "/v1/users/nobody/events").json()
    assert unknown == {"user_id": "nobody", "known": False, "events": []}
    assert _get(served, f"/v1/users/{user}/events?limit=0").status_code == 422


def test_models_read_and_alias_changes_need_an_admin_key(served: ServedWorld) -> None:
    listing = _get(served, "/v1/models").json()
    version = listing["aliases"]["production"]
    production = [v for v in listing["versions"] if "production" in v["aliases"]]
    assert [v["model_version"] for v in production] == [version]
    registered = [v["registered_at"] for v in listing["versions"]]
    assert registered == sorted(registered, reverse=True)  # newest first
    training = _get(served, f"/v1/models/{version}/training").json()
    assert "data" in training and "configuration" in training
    assert _get(served, "/v1/models/production/training").json() == training
    assert _get(served, "/v1/models/20200101T000000Z-abcdef/training").status_code == 404
    promote = f"{served.url}/v1/models/aliases/shadow/promote"
    refused = httpx.post(promote, json={"version": version}, headers={"X-API-Key": served.read_key})
    assert refused.status_code == 403
    admin = {"X-API-Key": served.admin_key}
    moved = httpx.post(promote, json={"version": version}, headers=admin, timeout=60)
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"alias": "shadow", "model_version": version, "previous": None}
    bad = httpx.post(promote, json={"version": "latest"}, headers=admin)
    assert bad.status_code == 422
    rollback = httpx.post(f"{served.url}/v1/models/aliases/shadow/rollback", headers=admin)
    assert rollback.status_code == 409
    assert "no previous version" in rollback.json()["error"]["message"]


def test_job_runs_and_the_dead_letter_summary(served: ServedWorld) -> None:
    runs = _get(served, "/v1/jobs/runs").json()["runs"]
    assert {"popularity", "trending", "recommendations"} <= {run["job_name"] for run in runs}
    only = _get(served, "/v1/jobs/runs?job=trending&status=succeeded").json()["runs"]
    assert only and {(r["job_name"], r["status"]) for r in only} == {("trending", "succeeded")}
    assert _get(served, "/v1/jobs/runs?status=exploded").status_code == 422
    bad = httpx.post(
        f"{served.url}/v1/events",
        json={"user_id": "u1", "item_id": "i1", "event_type": "teleport"},
        headers={"X-API-Key": served.key(["ingest"])[1]},
    )
    assert bad.status_code == 422
    summary = _get(served, "/v1/dlq/summary").json()
    assert summary["size"]["invalid"] >= 1
    assert summary["reasons"].get("unknown_event_type", 0) >= 1


def test_home_links_to_the_dashboard_and_the_docs(served: ServedWorld) -> None:
    page = httpx.get(f"{served.url}/")
    assert page.status_code == 200 and 'href="/docs"' in page.text
    assert 'id="dashboard"' not in page.text  # no [dashboard] url set
    settings = load_settings(dashboard={"url": "http://127.0.0.1:8501"})
    with LiveServer(settings) as server:
        linked = httpx.get(f"{server.url}/").text
    assert '<a id="dashboard" href="http://127.0.0.1:8501">' in linked
