"""The shadow model over the real app: it ranks the sampled requests off the request path
and is compared with production (overlap@k, rank correlation, latency difference), users get
exactly what they get without it, and a full queue drops offers instead of waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ranking.serving_world import World, build_world, fitted_model, register
from typer.testing import CliRunner

from api.gateway_testing import TestClient, make_keys
from tastebud.api.app import create_app
from tastebud.cli.main import app as cli
from tastebud.client import TastebudClient
from tastebud.monitoring.shadow import compare
from tastebud.observability import metrics
from tastebud.ranking.recommender import RecommendationService

USERS = [f"u{n}" for n in range(12)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = build_world(tmp_path, monitoring={"shadow_sample": 1.0, "shadow_queue": 64})
    yield world
    world.stores.close()


def requests(http: TestClient, key: str) -> list[dict[str, Any]]:
    """The same lists asked for every way: GET per user, a batch, an anonymous session."""
    headers = {"X-API-Key": key}
    bodies = [
        http.get(f"/v1/users/{user}/recommendations", params={"k": 5}, headers=headers).json()
        for user in USERS
    ]
    bodies += http.post(
        "/v1/recommendations", json={"users": USERS[:4], "k": 7}, headers=headers
    ).json()["results"]
    bodies += http.post(
        "/v1/recommendations", json={"recent_items": ["i3", "i6"], "k": 5}, headers=headers
    ).json()["results"]
    for body in bodies:
        assert body.pop("list_id")  # new per list: the only field that may differ
    return bodies


def same(these: list[dict[str, Any]], those: list[dict[str, Any]]) -> bool:
    """Equal documents, but for scores within 1e-4: the recency boost moves with the clock
    (an item's score may round one way a second later)."""
    assert len(these) == len(those)
    for this, that in zip(these, those, strict=True):
        assert {**this, "items": None} == {**that, "items": None}
        assert [{**item, "score": None} for item in this["items"]] == [
            {**item, "score": None} for item in that["items"]
        ]
        scores = [
            (a["score"], b["score"]) for a, b in zip(this["items"], that["items"], strict=True)
        ]
        assert all(a == pytest.approx(b, abs=1e-4) for a, b in scores)
    return True


def service_of(http: TestClient) -> RecommendationService:
    return http.app.state.recommendations  # type: ignore[attr-defined,no-any-return]


def compared(service: RecommendationService, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while service.shadow.summary.as_dict()["counts"]["compared"] < count:
        assert time.monotonic() < deadline, service.shadow.status()
        time.sleep(0.02)


def test_users_get_the_same_lists_with_a_shadow_and_the_shadow_is_compared(world: World) -> None:
    keys = make_keys(world.stores.database)
    off = world.settings.model_copy(
        update={"monitoring": world.settings.monitoring.model_copy(update={"shadow_sample": 0.0})}
    )
    with TestClient(create_app(off)) as http:
        without = requests(http, keys["read"])
        assert service_of(http).shadow.status()["counts"]["compared"] == 0
    shadow = register(world.registry, fitted_model(seed=1), world.trained_until, alias="shadow")
    with TestClient(create_app(world.settings)) as http:
        service = service_of(http)
        service.shadow.refresh()  # ready now, not at the worker's next poll
        assert service.shadow.version == shadow
        with_shadow = requests(http, keys["read"])
        assert same(with_shadow, without)
        compared(service, len(with_shadow))
        service.shadow.share()  # what the worker does every poll
        status = TastebudClient("http://testserver", keys["read"], http=http).shadow()
    assert status["shadow_version"] == shadow
    assert status["production_version"] == world.version
    figures = status["versions"][shadow]
    assert figures["comparisons"] == len(with_shadow)
    assert figures["production_version"] == world.version
    assert 0.0 < figures["overlap_mean"] <= 1.0  # a different seed: similar, not the same
    assert figures["correlated"] > 0 and -1.0 <= figures["correlation_mean"] <= 1.0
    assert figures["latency_difference_ms_median"] is not None
    assert status["fleet"]["workers"] == 1  # the one worker, through the online store
    assert status["fleet"]["versions"][shadow] == figures
    assert status["fleet"]["counts"] == status["counts"]
    count = metrics.registry.get_sample_value(
        "tastebud_shadow_overlap_ratio_count", {"shadow_version": shadow}
    )
    assert count is not None and count >= len(with_shadow)


def test_a_full_queue_drops_offers_and_never_waits(world: World) -> None:
    keys = make_keys(world.stores.database)
    settings = world.settings.model_copy(
        update={"monitoring": world.settings.monitoring.model_copy(update={"shadow_queue": 2})}
    )
    register(world.registry, fitted_model(seed=1), world.trained_until, alias="shadow")
    release = threading.Event()
    with TestClient(create_app(settings)) as http:
        service = service_of(http)
        service.shadow.refresh()
        production = service.shadow.compute

        def stuck(*args: Any, **kwargs: Any) -> Any:  # a shadow far slower than requests
            release.wait(30)
            return production(*args, **kwargs)

        service.shadow.compute = stuck
        headers = {"X-API-Key": keys["read"]}
        started = time.perf_counter()
        for user in USERS:
            response = http.get(f"/v1/users/{user}/recommendations", headers=headers)
            assert response.status_code == 200
        elapsed = time.perf_counter() - started
        counts = service.shadow.summary.as_dict()["counts"]
        # One in the worker's hands, two queued, the rest dropped: none waited.
        assert counts["dropped"] >= len(USERS) - 3
        assert elapsed < 10
        release.set()
        compared(service, len(USERS) - counts["dropped"])
        assert service.shadow.pending == 0


def test_a_shadow_alias_on_production_or_missing_ranks_nothing(world: World) -> None:
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    try:
        service.shadow.refresh()
        assert service.shadow.version is None and service.shadow.problem is None
        world.registry.promote(world.version, "shadow")
        service.shadow.refresh()
        assert service.shadow.version is None
        assert "production" in str(service.shadow.problem)
    finally:
        service.stop()


def test_compare_overlap_correlation_and_latency() -> None:
    production = [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)]
    shadow = [("c", 3.0), ("b", 2.0), ("a", 1.0), ("x", 0.5), ("d", 0.1)]
    found = compare(
        production, shadow, shadow_version="s", production_version="p",
        production_ms=4.0, shadow_ms=6.5,
    )  # fmt: skip
    assert found.k == 4 and found.overlap == 0.75  # d is fifth in the shadow's list
    assert found.correlation == pytest.approx(-1.0)  # a, b, c in reverse order
    assert found.latency_difference_ms == pytest.approx(2.5)
    alone = compare([("a", 1.0)], [("b", 1.0)], shadow_version="s", production_version=None,
                    production_ms=None, shadow_ms=1.0)  # fmt: skip
    assert alone.overlap == 0.0 and alone.correlation is None
    assert alone.latency_difference_ms is None


def test_the_shadow_command_refuses_a_bad_url_and_names_an_unreachable_server() -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["monitor", "shadow", "--url", "ftp://host"])
    assert bad.exit_code == 2 and "--url must be http" in bad.output
    down = runner.invoke(cli, ["monitor", "shadow", "--url", "http://127.0.0.1:9"])
    assert down.exit_code == 3 and "cannot reach http://127.0.0.1:9" in down.output


def test_a_shadow_version_that_cannot_load_is_refused_once_and_retried_later(
    world: World,
) -> None:
    """The lifecycle's one load bookkeeping (``load_for``): refused, counted, named in the
    status, not tried again until ``retry_failed_seconds`` have passed."""
    broken = register(world.registry, fitted_model(seed=2), world.trained_until)
    state = Path(world.settings.resolved_artifacts_url, "models", "versions", broken, "state.npz")
    state.write_bytes(state.read_bytes()[:-10] + b"corrupted!")  # checksum mismatch
    world.registry.promote(broken, "shadow")
    refused = metrics.registry.get_sample_value(
        "tastebud_reco_model_loads_total", {"kind": "shadow", "outcome": "refused"}
    )
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    try:
        service.shadow.refresh()
        service.shadow.refresh()  # within the retry interval: not loaded again
        assert service.shadow.version is None
        assert f"shadow -> {broken} cannot be loaded" in str(service.shadow.problem)
        after = metrics.registry.get_sample_value(
            "tastebud_reco_model_loads_total", {"kind": "shadow", "outcome": "refused"}
        )
        assert (after or 0.0) - (refused or 0.0) == 1.0
        # Once the interval has passed (its clock moved back), it is tried again.
        service.lifecycle._failed[("shadow", broken)] -= (
            world.settings.serving.retry_failed_seconds + 1
        )
        service.shadow.refresh()
        again = metrics.registry.get_sample_value(
            "tastebud_reco_model_loads_total", {"kind": "shadow", "outcome": "refused"}
        )
        assert (again or 0.0) - (refused or 0.0) == 2.0
    finally:
        service.stop()
