"""/v1/experiments: definitions over HTTP on each backend. Admin writes, read reads with the
audit trail; invalid definitions are 422 naming the field with nothing stored; refusals of
the experiment's state are 409; errors in the API's shape."""

from __future__ import annotations

from typing import Any

from experiments.factories import definition

from api.gateway_testing import Api


def put(api: Api, key: str, body: Any, scope: str = "admin", note: str = "") -> Any:
    return api.client.put(
        f"/v1/experiments/{key}", json=body, params={"note": note}, headers=api.headers(scope)
    )


def post(api: Api, key: str, action: str, body: Any = None, scope: str = "admin") -> Any:
    return api.client.post(f"/v1/experiments/{key}/{action}", json=body, headers=api.headers(scope))


def test_define_start_pause_resume_stop(api: Api) -> None:
    read = api.headers("read")
    created = put(api, "blend", definition(), note="first")
    assert created.status_code == 201, created.text
    assert created.json()["experiment"]["status"] == "draft"
    body = definition(description="clearer")
    del body["key"]  # the path names it
    assert put(api, "blend", body).status_code == 200
    started = post(api, "blend", "start", {"note": "go"})
    assert started.status_code == 200 and started.json()["experiment"]["status"] == "running"
    paused = post(api, "blend", "pause", {"variant": "diverse", "note": "skips up"})
    assert paused.json()["experiment"]["paused_variants"] == {"diverse": "skips up"}
    unreviewed = post(api, "blend", "resume", {"note": "fine"})
    assert unreviewed.status_code == 422
    resumed = post(
        api, "blend", "resume", {"reviewed_by": "cy", "note": "a bug", "variant": "diverse"}
    )
    assert resumed.status_code == 200 and resumed.json()["experiment"]["paused_variants"] == {}
    assert post(api, "blend", "stop").status_code == 200
    again = post(api, "blend", "start")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "experiment_conflict"
    assert "stopped experiment cannot run again" in again.json()["error"]["message"]
    listing = api.client.get("/v1/experiments", headers=read).json()["experiments"]
    assert [row["experiment"]["key"] for row in listing] == ["blend"] and listing[0][
        "audit"
    ] is None
    assert api.client.get("/v1/experiments?status=running", headers=read).json() == {
        "experiments": []
    }
    one = api.client.get("/v1/experiments/blend", headers=read).json()
    actions = [(entry["action"], entry["note"]) for entry in one["audit"]]
    assert actions == [
        ("create", "first"),
        ("update", ""),
        ("start", "go"),
        ("pause_variant:diverse", "skips up"),
        ("resume_variant:diverse", "a bug"),
        ("stop", ""),
    ]
    assert one["audit"][1]["changed"] == ["description"]
    assert one["audit"][0]["actor"].startswith("key:")
    assert one["audit"][4]["actor"] == "cy"


def test_scopes(api: Api) -> None:
    assert put(api, "blend", definition(), scope="read").status_code == 403
    assert put(api, "blend", definition()).status_code == 201
    assert post(api, "blend", "start", scope="read").status_code == 403
    assert api.client.get("/v1/experiments/blend", headers=api.headers("ingest")).status_code == 403
    assert api.client.get("/v1/experiments").status_code == 401


def test_invalid_definitions_are_422_naming_the_field_and_store_nothing(api: Api) -> None:
    cases = [
        (
            definition(variants=[{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}]),
            "variants",
        ),
        (
            definition(
                variants=[
                    {"name": "a", "weight": 0.5},
                    {"name": "b", "weight": 0.5, "ranking": {"mmr": {"lambda": 1}}},
                ]
            ),
            "variants.1.ranking.mmr.lambda",
        ),
        (definition(goals=["revenue"]), "goals.0"),
        (
            definition(
                variants=[
                    {"name": "a", "weight": 0.5},
                    {"name": "b", "weight": 0.5, "model": "shadow"},
                ]
            ),
            "variants.1.model",
        ),
        (definition("other"), "key"),
        ([1, 2], ""),
    ]
    for body, field in cases:
        refused = put(api, "blend", body)
        assert refused.status_code == 422, (field, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "invalid_definition"
        assert error["details"][0]["field"] == field, error
        assert error["message"].startswith(f"{field}: " if field else "send one")
    assert (
        put(
            api, "a", definition("a", namespace={"name": "home", "start": 0, "end": 0.5})
        ).status_code
        == 201
    )
    overlap = put(api, "b", definition("b", namespace={"name": "home", "start": 0.4, "end": 1}))
    assert (
        overlap.status_code == 422 and overlap.json()["error"]["details"][0]["field"] == "namespace"
    )
    listing = api.client.get("/v1/experiments", headers=api.headers("read")).json()["experiments"]
    assert [row["experiment"]["key"] for row in listing] == ["a"]


def test_unknown_keys_and_running_changes(api: Api) -> None:
    missing = api.client.get("/v1/experiments/ghost", headers=api.headers("read"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_experiment"
    assert post(api, "ghost", "start").status_code == 404
    bad_key = api.client.get("/v1/experiments/..%2Fetc", headers=api.headers("read"))
    assert bad_key.status_code in (404, 422)
    assert put(api, "blend", definition()).status_code == 201
    assert post(api, "blend", "start").status_code == 200
    reweighted = definition(
        variants=[{"name": "control", "weight": 0.9}, {"name": "diverse", "weight": 0.1}]
    )
    refused = put(api, "blend", reweighted)
    assert (
        refused.status_code == 409 and "cannot change mid-run" in refused.json()["error"]["message"]
    )
    malformed = api.client.put(
        "/v1/experiments/blend",
        content=b'{"key": "blend", "key": "x"}',
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    )
    assert malformed.status_code in (400, 422)


def test_an_experiment_with_no_exposures_has_no_analysis_yet(api: Api) -> None:
    """On each backend: a clear 409 before any list was served, 404 for an unknown key."""
    assert put(api, "blend", definition()).status_code == 201
    assert post(api, "blend", "start").status_code == 200
    answer = api.client.get("/v1/experiments/blend/analysis", headers=api.headers("read"))
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "no_exposures"
    assert "nothing to analyze yet" in answer.json()["error"]["message"]
    missing = api.client.get("/v1/experiments/nosuch/analysis", headers=api.headers("read"))
    assert missing.status_code == 404
    bad = api.client.get("/v1/experiments/no%20such/analysis", headers=api.headers("read"))
    assert bad.status_code == 422
