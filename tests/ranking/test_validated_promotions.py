"""Promotions validate (issue 16): ``models promote`` and ``rollback`` load the target and
ask it for a recommendation before moving an alias, and refuse a version that would not
serve; a server whose alias names an unloadable version serves the last good one and says
so, or reports not ready -- never an empty list that looks healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api.gateway_testing import TestClient, make_keys
from serving_world import World, build_world, fitted_model, register
from typer.testing import CliRunner

from tastebud.api.app import create_app
from tastebud.cli.main import app as cli

runner = CliRunner()


@pytest.fixture
def world(home: Path) -> Iterator[World]:
    world = build_world(home)
    yield world
    world.stores.close()


def corrupt(world: World, version: str) -> None:
    """Overwrite 64 bytes inside a version's state.npz, keeping its size (issue 16)."""
    path = Path(world.settings.resolved_artifacts_url, "models", "versions", version, "state.npz")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def test_promote_refuses_a_version_that_would_not_serve(world: World) -> None:
    broken = register(world.registry, fitted_model(seed=1), world.trained_until, alias="canary")
    corrupt(world, broken)
    result = runner.invoke(cli, ["models", "promote", broken])
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "state.npz" in result.output
    assert f"production still points to {world.version}" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert world.registry.aliases()["production"] == world.version
    good = register(world.registry, fitted_model(seed=2), world.trained_until, alias="canary")
    promoted = runner.invoke(cli, ["models", "promote", good])
    assert promoted.exit_code == 0, promoted.output
    assert world.registry.aliases()["production"] == good


def test_rollback_refuses_a_previous_version_that_would_not_serve(world: World) -> None:
    second = register(world.registry, fitted_model(seed=1), world.trained_until)
    corrupt(world, world.version)
    result = runner.invoke(cli, ["models", "rollback"])
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "Traceback" not in result.output
    assert world.registry.aliases()["production"] == second


def _serve(world: World) -> Iterator[tuple[TestClient, dict[str, str]]]:
    headers = {"X-API-Key": make_keys(world.stores.database)["read"]}
    with TestClient(create_app(world.settings)) as client:
        yield client, headers


def test_a_server_serves_the_last_good_version_and_says_so(world: World) -> None:
    broken = register(world.registry, fitted_model(seed=1), world.trained_until)
    corrupt(world, broken)  # promoted before promotions validated, or by hand
    for client, headers in _serve(world):
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        verdict = ready.json()["checks"]["model"]
        assert broken in verdict and f"serving {world.version}" in verdict
        answer = client.get("/v1/users/u0/recommendations", headers=headers).json()
        assert answer["model_version"] == world.version and answer["items"]


def test_a_server_with_no_loadable_version_is_not_ready(world: World) -> None:
    corrupt(world, world.version)
    for client, _ in _serve(world):
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["model"].startswith("no model")
