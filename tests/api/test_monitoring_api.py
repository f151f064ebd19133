"""GET /v1/monitoring and /v1/monitoring/history: the recorded results, read scope, on each
backend."""

from __future__ import annotations

from datetime import UTC, datetime

from api.gateway_testing import Api
from tastebud.monitoring.results import MonitorCheck, MonitorReport, MonitorResultStore

AS_OF = datetime(2026, 3, 9, 12, tzinfo=UTC)


def record(api: Api, run_id: str, offline: str) -> None:
    store = MonitorResultStore(api.database.sql_backend("monitoring"))
    checks = [
        MonitorCheck("baseline", "pass", "at training time", {"ndcg@10": 0.2}),
        MonitorCheck(
            "offline",
            offline,  # type: ignore[arg-type]
            "NDCG@10 0.1 against 0.2",
            metrics={"offline.ndcg@10.drop": 0.5},
            trigger="ndcg_drop",
        ),
        MonitorCheck("age", "pass", "3 h", {"model.age_hours": 3.0}, trigger="max_age_hours"),
    ]
    try:
        store.record(MonitorReport(run_id, "v7", AS_OF, AS_OF, checks))
    finally:
        store.close()


def test_latest_results_and_history(api: Api) -> None:
    client, read = api.client, api.headers("read")
    empty = client.get("/v1/monitoring", headers=read)
    assert empty.status_code == 200
    assert empty.json() == {
        "run_id": None,
        "model_version": None,
        "as_of": None,
        "status": None,
        "firing": [],
        "checks": [],
    }
    record(api, "first", "pass")
    record(api, "second", "fail")
    latest = client.get("/v1/monitoring", headers=read).json()
    assert latest["run_id"] == "second" and latest["status"] == "fail"
    assert latest["model_version"] == "v7" and latest["firing"] == ["ndcg_drop"]
    offline = latest["checks"][1]
    assert offline["metrics"] == {"offline.ndcg@10.drop": 0.5}
    assert offline["as_of"] == AS_OF.isoformat()
    history = client.get("/v1/monitoring/history?check=offline", headers=read).json()["results"]
    assert [row["run_id"] for row in history] == ["second", "first"]
    failed = client.get("/v1/monitoring/history?status=fail&limit=5", headers=read).json()
    assert [row["run_id"] for row in failed["results"]] == ["second"]
    other = client.get("/v1/monitoring/history?model_version=v8", headers=read).json()
    assert other["results"] == []


def test_monitoring_needs_the_read_scope_and_valid_filters(embedded_api: Api) -> None:
    client = embedded_api.client
    assert client.get("/v1/monitoring").status_code == 401
    assert client.get("/v1/monitoring", headers=embedded_api.headers("ingest")).status_code == 403
    assert client.get("/v1/monitoring", headers=embedded_api.headers("admin")).status_code == 200
    bad = client.get("/v1/monitoring/history?check=vibes", headers=embedded_api.headers("read"))
    assert bad.status_code == 422 and "check" in bad.text
    too_many = client.get("/v1/monitoring/history?limit=0", headers=embedded_api.headers("read"))
    assert too_many.status_code == 422
