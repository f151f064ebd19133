"""The serving model follows the registry alias: promotion and rollback swap it in a running
service without a failed request; a broken version is refused and the current one serves."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_world import World, build_world, fitted_model, register

from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.recommender import MODEL_LOADS, RecommendationService
from tastebud.registry.errors import ModelLoadError


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = build_world(tmp_path, serving={"poll_seconds": 0.05})
    yield world
    world.stores.close()


def refused() -> float:
    return MODEL_LOADS.labels(kind="model", outcome="refused")._value.get()


def served_version(service: RecommendationService) -> str | None:
    return service.recommend("u0", RankRequest(k=5)).ranked.model_version


def test_promotion_and_rollback_swap_the_model(world: World) -> None:
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    assert served_version(service) == world.version
    second = register(world.registry, fitted_model(seed=1), world.trained_until)
    assert service.refresh()
    assert served_version(service) == second
    world.registry.rollback("production")
    assert service.refresh()
    assert served_version(service) == world.version
    assert not service.refresh()  # nothing changed: the snapshot stays


def test_a_broken_version_is_refused_and_the_previous_one_keeps_serving(world: World) -> None:
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    before = refused()
    broken = register(world.registry, fitted_model(seed=2), world.trained_until)
    state = Path(world.settings.resolved_artifacts_url, "models", "versions", broken, "state.npz")
    state.write_bytes(state.read_bytes()[:-10] + b"corrupted!")  # checksum mismatch
    assert not service.refresh()
    assert refused() == before + 1
    assert served_version(service) == world.version
    assert not service.refresh()  # not retried on every poll
    assert refused() == before + 1
    # A good version promoted after the broken one is taken.
    fixed = register(world.registry, fitted_model(seed=3), world.trained_until)
    assert service.refresh()
    assert served_version(service) == fixed


def test_a_model_that_fails_to_load_is_refused(world: World) -> None:
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    version = register(world.registry, fitted_model(seed=4), world.trained_until)
    folder = Path(world.settings.resolved_artifacts_url, "models", "versions", version)
    # A consistent manifest over a model.json that names no known model type.
    model_json = folder / "model.json"
    model_json.write_text(model_json.read_text().replace('"als"', '"nonsense"'))
    manifest = folder / "manifest.json"
    document = json.loads(manifest.read_text())
    document["files"]["model.json"] = {
        "sha256": hashlib.sha256(model_json.read_bytes()).hexdigest(),
        "bytes": model_json.stat().st_size,
    }
    manifest.write_text(json.dumps(document))
    assert world.registry.get(version).model_version == version  # the manifest is valid
    with pytest.raises(ModelLoadError, match="unknown model type"):
        service.load_model(version)
    assert not service.refresh()
    assert served_version(service) == world.version


def test_running_service_swaps_without_a_failed_request(world: World) -> None:
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=True)
    versions = {world.version}
    failures: list[BaseException] = []
    seen: set[str | None] = set()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                served = service.recommend("u1", RankRequest(k=10))
                assert len(served.ranked.items) == 10
                seen.add(served.ranked.model_version)
            except BaseException as error:  # any failure fails the test
                failures.append(error)
                return

    callers = [threading.Thread(target=traffic) for _ in range(3)]
    for caller in callers:
        caller.start()
    try:
        for seed in (5, 6, 7):
            version = register(world.registry, fitted_model(seed=seed), world.trained_until)
            versions.add(version)
            deadline = time.monotonic() + 10
            while service.snapshot.model_version != version:
                assert time.monotonic() < deadline, "the watcher did not swap the model"
                time.sleep(0.02)
    finally:
        stop.set()
        for caller in callers:
            caller.join()
        service.stop()
    assert failures == []
    assert seen <= versions and len(seen) >= 2
