"""GET /v1/quality and /v1/quality/history: the recorded results, read scope, on each
backend."""

from __future__ import annotations

from datetime import UTC, datetime

from api.gateway_testing import Api
from tastebud.quality.results import CheckResult, QualityReport, QualityResultStore

AS_OF = datetime(2026, 3, 9, 12, tzinfo=UTC)


def record(api: Api, run_id: str, volume: str) -> None:
    store = QualityResultStore(api.database.sql_backend("quality"))
    try:
        store.record(
            QualityReport(
                run_id,
                AS_OF,
                AS_OF,
                [
                    CheckResult(
                        "volume",
                        volume,  # type: ignore[arg-type]
                        "1 hour anomalous",
                        metrics={"volume.drop": 0.5},
                        statuses={"volume.drop": volume},  # type: ignore[dict-item]
                        critical=True,
                    ),
                    CheckResult("drift", "error", "could not run: no production model"),
                ],
            )
        )
    finally:
        store.close()


def test_latest_results_and_history(api: Api) -> None:
    client, read = api.client, api.headers("read")
    empty = client.get("/v1/quality", headers=read)
    assert empty.status_code == 200
    assert empty.json() == {
        "run_id": None,
        "as_of": None,
        "status": None,
        "blocking": [],
        "checks": [],
    }
    record(api, "first", "pass")
    record(api, "second", "fail")
    latest = client.get("/v1/quality", headers=read).json()
    assert latest["run_id"] == "second" and latest["status"] == "fail"
    assert latest["blocking"] == ["volume"]
    volume = latest["checks"][0]
    assert volume["metrics"]["volume.drop"] == {"value": 0.5, "status": "fail"}
    assert volume["as_of"] == AS_OF.isoformat()
    history = client.get("/v1/quality/history?check=volume", headers=read).json()["results"]
    assert [row["run_id"] for row in history] == ["second", "first"]
    failed = client.get("/v1/quality/history?status=fail&limit=5", headers=read).json()
    assert [row["run_id"] for row in failed["results"]] == ["second"]


def test_quality_needs_the_read_scope_and_valid_filters(embedded_api: Api) -> None:
    client = embedded_api.client
    assert client.get("/v1/quality").status_code == 401
    assert client.get("/v1/quality", headers=embedded_api.headers("ingest")).status_code == 403
    assert client.get("/v1/quality", headers=embedded_api.headers("admin")).status_code == 200
    bad = client.get("/v1/quality/history?check=vibes", headers=embedded_api.headers("read"))
    assert bad.status_code == 422 and "check" in bad.text
    too_many = client.get("/v1/quality/history?limit=0", headers=embedded_api.headers("read"))
    assert too_many.status_code == 422
