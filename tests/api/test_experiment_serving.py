"""Experiments in serving, over the real app: a request is served its variant (ranking
overrides, a variant's model) and says which, every served list is an exposure, forced
variants need admin, and a failing book or an unloadable model never fails a request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ranking.serving_world import World, build_world, fitted_model, register

from api.gateway_testing import Api, TestClient, make_keys
from tastebud.api.app import create_app
from tastebud.experiments.assignment import ExperimentBook
from tastebud.experiments.definition import Experiment
from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions import recommendations
from tastebud.observability import metrics
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.recommender import RecommendationService

POPULAR_ONLY = {"candidates": {"cf": 0, "content": 0}}
USERS = [f"u{n}" for n in range(24)]


def experiment(key: str = "blend", **variant: Any) -> Experiment:
    treatment = {"name": "treatment", "weight": 0.5, "ranking": POPULAR_ONLY, **variant}
    return Experiment.model_validate(
        {
            "key": key,
            "variants": [{"name": "control", "weight": 0.5}, treatment],
            "goals": ["ctr"],
            "status": "running",
        }
    )


class Served:
    def __init__(self, world: World) -> None:
        self.world = world
        self.keys = make_keys(world.stores.database)
        self.http = TestClient(create_app(world.settings), raise_server_exceptions=True)

    @property
    def service(self) -> RecommendationService:
        return self.http.app.state.recommendations  # type: ignore[attr-defined,no-any-return]

    def run(self, *experiments: Experiment) -> ExperimentBook:
        book = ExperimentBook(list(experiments), self.world.settings.ranking)
        self.service.experiments.use(lambda: book)
        return book

    def get(self, user: str, scope: str = "read", variant: str | None = None, **params: Any) -> Any:
        headers = {"X-API-Key": self.keys[scope]}
        if variant is not None:
            headers["X-Tastebud-Variant"] = variant
        return self.http.get(
            f"/v1/users/{user}/recommendations", params={"k": 5, **params}, headers=headers
        )

    def post(self, body: dict[str, Any], **headers: str) -> Any:
        headers = {"X-API-Key": self.keys["read"], **headers}
        return self.http.post("/v1/recommendations", json=body, headers=headers)

    def exposures(self) -> list[dict[str, Any]]:
        log = self.service.experiments.exposures
        assert log is not None
        log.flush()
        now = datetime.now(UTC)
        rows = log.scan(now - timedelta(hours=1), now + timedelta(hours=1)).to_pylist()
        return rows


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    world = build_world(tmp_path)
    served = Served(world)
    with served.http:
        yield served
    world.stores.close()


def ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def fallbacks(reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "tastebud_experiment_fallbacks_total", {"reason": reason}
    )
    return value or 0.0


def test_each_user_gets_their_variant_and_the_response_says_which(served: Served) -> None:
    book = served.run(experiment())
    popular_only = served.world.settings.ranking.with_overrides(POPULAR_ONLY)
    seen: dict[str, str] = {}
    list_ids = set()
    for user in USERS:
        body = served.get(user).json()
        assignment = book.assign(user)
        assert assignment is not None
        assert (body["experiment"], body["variant"]) == ("blend", assignment.variant)
        ranking = popular_only if assignment.variant == "treatment" else None
        expected, _ = served.service.compute(user, RankRequest(k=5), ranking=ranking)
        assert ids(body) == [item.item_id for item in expected.ranked.items]
        seen[user] = assignment.variant
        list_ids.add(body["list_id"])
    assert set(seen.values()) == {"control", "treatment"}
    assert len(list_ids) == len(USERS)  # a new id per served list
    # Sticky: the same user, the same variant and list.
    again = served.get(USERS[0]).json()
    assert again["variant"] == seen[USERS[0]] and again["list_id"] not in list_ids


def test_every_served_list_is_an_exposure(served: Served) -> None:
    plain = served.get("u1").json()  # no experiment running: still an exposure
    assert (plain["experiment"], plain["variant"]) == (None, None)
    served.run(experiment())
    bodies = [served.get(user, session_id="tab-1").json() for user in USERS[:6]]
    rows = {row["list_id"]: row for row in served.exposures()}
    assert set(rows) == {plain["list_id"], *(b["list_id"] for b in bodies)}
    for body in [plain, *bodies]:
        row = rows[body["list_id"]]
        assert row["items"] == ids(body)  # in order: position = index + 1
        assert (row["experiment"], row["variant"]) == (body["experiment"], body["variant"])
        assert row["user_id"] == body["user_id"]
        assert row["model_version"] == served.world.version
        assert row["latency_ms"] > 0 and row["degraded"] is False
    assert rows[bodies[0]["list_id"]]["session_id"] == "tab-1"
    assert rows[plain["list_id"]]["session_id"] is None


def test_anonymous_sessions_are_assigned_by_their_session_id(served: Served) -> None:
    book = served.run(experiment())
    sessions = [f"device-{n}" for n in range(12)]
    for session in sessions:
        body = served.post({"recent_items": ["i3", "i6"], "k": 5, "session_id": session})
        result = body.json()["results"][0]
        assignment = book.assign(session)
        assert assignment is not None and result["variant"] == assignment.variant
        assert result["user_id"] is None and result["list_id"]
    unnamed = served.post({"recent_items": ["i3"], "k": 5}).json()["results"][0]
    assert (unnamed["experiment"], unnamed["variant"]) == (None, None)
    batch = served.post({"users": USERS[:4], "k": 5}).json()["results"]
    assert [r["variant"] for r in batch] == [book.assign(u).variant for u in USERS[:4]]  # type: ignore[union-attr]
    rows = {row["list_id"]: row for row in served.exposures()}
    anonymous = [row for row in rows.values() if row["user_id"] is None]
    assert {row["session_id"] for row in anonymous} == {*sessions, None}
    assert all(rows[r["list_id"]]["user_id"] == r["user_id"] for r in batch)
    bad = served.post({"recent_items": ["i3"], "k": 5, "session_id": "two words"})
    assert bad.status_code == 422 and "session_id" in bad.text
    assert served.get("u1", session_id="x" * 300).status_code == 422


def test_request_overrides_on_top_of_a_variant_are_not_counted(served: Served) -> None:
    served.run(experiment())
    body = served.post({"users": USERS[:6], "k": 5, "ranking": {"mmr": {"enabled": False}}})
    results = body.json()["results"]
    assert all(r["experiment"] == "blend" for r in results)
    rows = {row["list_id"]: row for row in served.exposures()}
    assert all(rows[r["list_id"]]["experiment"] is None for r in results)


def test_a_forced_variant_needs_admin_and_is_never_counted(served: Served) -> None:
    book = served.run(experiment())
    control_user = next(u for u in USERS if book.assign(u).variant == "control")  # type: ignore[union-attr]
    forced = served.get(control_user, scope="admin", variant="blend:treatment")
    assert forced.status_code == 200, forced.text
    assert forced.json()["variant"] == "treatment"
    row = next(r for r in served.exposures() if r["list_id"] == forced.json()["list_id"])
    assert (row["experiment"], row["variant"]) == (None, None)
    refused = served.get(control_user, scope="read", variant="blend:treatment")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert "X-Tastebud-Variant" in refused.json()["error"]["message"]
    by_name = served.get(control_user, scope="admin", variant="treatment")
    assert by_name.status_code == 200 and by_name.json()["variant"] == "treatment"
    for bad in ("blend:", ":treatment", "blend:treat ment", "a:b:c", "x" * 70 + ":y"):
        answer = served.get(control_user, scope="admin", variant=bad)
        assert answer.status_code == 422, bad  # the header's pattern, checked by FastAPI
        assert answer.json()["error"]["details"][0]["loc"] == ["header", "X-Tastebud-Variant"]
    unknown = served.get(control_user, scope="admin", variant="blend:nosuch")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_variant"
    posted = served.post(
        {"users": [control_user], "k": 5},
        **{"X-Tastebud-Variant": "blend:treatment", "X-API-Key": served.keys["admin"]},
    )
    assert posted.json()["results"][0]["variant"] == "treatment"


def test_a_failing_book_serves_control_and_counts(served: Served) -> None:
    def broken() -> ExperimentBook:
        raise ConnectionError("the experiment store is down")

    served.service.experiments.use(broken)
    before = fallbacks("book")
    answers = [served.get(user) for user in USERS[:3]]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json()["experiment"] is None for a in answers)
    assert fallbacks("book") == before + 3
    posted = served.post({"recent_items": ["i1"], "k": 3, "session_id": "s1"})
    assert posted.status_code == 200 and posted.json()["results"][0]["variant"] is None


def test_a_variant_model_serves_once_loaded_and_control_until_then(served: Served) -> None:
    world = served.world
    canary = register(world.registry, fitted_model(seed=1), world.trained_until, alias="canary")
    book = served.run(experiment(model="canary", ranking={}))
    treated = [u for u in USERS if book.assign(u).variant == "treatment"]  # type: ignore[union-attr]
    before = fallbacks("model")
    first = served.get(treated[0]).json()  # not loaded yet: control's, not counted
    assert first["variant"] == "control" and first["model_version"] == served.world.version
    assert fallbacks("model") == before + 1
    served.service.variants.refresh()  # what the variants thread does
    for user in treated[:3]:
        body = served.get(user).json()
        assert body["variant"] == "treatment" and body["model_version"] == canary
    rows = {row["list_id"]: row for row in served.exposures()}
    assert rows[first["list_id"]]["experiment"] is None
    assert rows[body["list_id"]]["model_version"] == canary


def test_a_variant_model_that_cannot_load_serves_control(served: Served) -> None:
    book = served.run(experiment(model="20990101T000000Z-nosuch", ranking={}))
    treated = next(u for u in USERS if book.assign(u).variant == "treatment")  # type: ignore[union-attr]
    served.service.variants.refresh()
    before = fallbacks("model")
    answer = served.get(treated)
    assert answer.status_code == 200 and answer.json()["variant"] == "control"
    assert answer.json()["model_version"] == served.world.version
    assert fallbacks("model") == before + 1
    served.service.variants.refresh()  # the load the request asked for, done (or waited for)
    assert "20990101T000000Z-nosuch" in served.service.variants.problems


def test_a_served_list_id_comes_back_on_events_and_is_stored(api: Api) -> None:
    """Exposures on each backend, and attribution: ``context.list_id`` on a client event is
    accepted as it is and stored with the event."""
    answer = api.client.get(
        "/v1/users/u1/recommendations", params={"k": 3}, headers=api.headers("read")
    )
    assert answer.status_code == 200, answer.text
    list_id = answer.json()["list_id"]
    event = {
        "event_id": "attributed-1",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "click",
        "timestamp": datetime.now(UTC).isoformat(),
        "context": {"list_id": list_id, "position": 1},
    }
    response = api.post_events(event)
    assert response.status_code == 202 and response.json()["accepted"] == 1, response.text
    (stored,) = api.database.events.scan()
    assert stored.context == {"list_id": list_id, "position": 1}
    log = api.client.app.state.recommendations.experiments.exposures  # type: ignore[attr-defined]
    log.flush()
    now = datetime.now(UTC)
    rows = log.scan(now - timedelta(hours=1), now + timedelta(hours=1)).to_pylist()
    assert [(row["list_id"], row["user_id"]) for row in rows] == [(list_id, "u1")]


def test_a_moved_alias_moves_the_variant_model(served: Served) -> None:
    world = served.world
    first = register(world.registry, fitted_model(seed=1), world.trained_until, alias="canary")
    book = served.run(experiment(model="canary", ranking={}))
    treated = next(u for u in USERS if book.assign(u).variant == "treatment")  # type: ignore[union-attr]
    served.get(treated)  # asks for it
    served.service.variants.refresh()
    assert served.get(treated).json()["model_version"] == first
    second = register(world.registry, fitted_model(seed=2), world.trained_until, alias="canary")
    served.service.variants.refresh()
    assert served.get(treated).json()["model_version"] == second


def test_variants_equal_to_the_configured_settings_keep_the_stored_lists(tmp_path: Path) -> None:
    world = build_world(tmp_path, online_url=None)  # SQLite: looked up on the event loop
    served = Served(world)
    try:
        now = datetime.now(UTC)
        context = JobContext(
            job_name="recommendations",
            run_id="experiments",
            attempt=1,
            start=now - timedelta(hours=1),
            end=now,
            settings=world.settings,
            stores=world.stores,
        )
        recommendations.run(context)
        with served.http:
            # "treatment" sets MMR on, as configured: the same settings, the same lists.
            book = served.run(experiment(ranking={"mmr": {"enabled": True}}))
            before = stored_hits()
            bodies = [served.get(user, k=20).json() for user in USERS[:8]]
            assert stored_hits() == before + 8
            assert {b["variant"] for b in bodies} == {"control", "treatment"}
            assert all(b["variant"] == book.assign(b["user_id"]).variant for b in bodies)  # type: ignore[union-attr]
            rows = {row["list_id"]: row for row in served.exposures()}
            assert all(rows[b["list_id"]]["items"] == ids(b) for b in bodies)
            # A variant that changes ranking is ranked on demand.
            book = served.run(experiment())
            treated = [u for u in USERS if book.assign(u).variant == "treatment"][:3]  # type: ignore[union-attr]
            before = stored_hits()
            assert all(served.get(u, k=20).json()["variant"] == "treatment" for u in treated)
            assert stored_hits() == before
    finally:
        world.stores.close()


def stored_hits() -> float:
    value = metrics.registry.get_sample_value(
        "tastebud_reco_precomputed_requests_total", {"outcome": "hit"}
    )
    return value or 0.0


def test_a_started_experiment_reaches_serving_through_the_watcher(served: Served) -> None:
    """The whole path: a definition PUT over the API and started is what requests are served
    within the 5 s the issue allows (the lifespan's watcher polls every poll_seconds)."""
    admin = {"X-API-Key": served.keys["admin"]}
    body = {
        "variants": [
            {"name": "control", "weight": 0.5},
            {"name": "popular", "weight": 0.5, "ranking": POPULAR_ONLY},
        ],
        "goals": ["click_through"],
    }
    assert served.http.put("/v1/experiments/live", json=body, headers=admin).status_code == 201
    assert served.get(USERS[0]).json()["experiment"] is None  # a draft serves nobody
    started = time.monotonic()
    assert served.http.post("/v1/experiments/live/start", headers=admin).status_code == 200
    variants: set[str] = set()
    while time.monotonic() - started < 5.0 and len(variants) < 2:
        answers = [served.get(user).json() for user in USERS]
        variants = {answer["variant"] for answer in answers if answer["experiment"] == "live"}
        time.sleep(0.2)
    assert variants == {"control", "popular"}, f"not served within 5 s: {variants}"
