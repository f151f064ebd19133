"""The shadow's fleet view from a real ``tastebud serve --workers 2`` over one SQLite online
store: both workers publish, lists served by either are counted once in the merged figures
whichever worker answers, and ``tastebud monitor shadow`` prints them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from ranking.serving_world import build_world, fitted_model, register
from typer.testing import CliRunner

from api.gateway_testing import ServerProcess, free_port, make_keys, server_env
from tastebud.cli.main import app as cli

LISTS = 40


def test_two_workers_shadow_comparisons_are_merged(tmp_path: Path) -> None:
    home, online = tmp_path / "home", f"sqlite://{tmp_path / 'online.db'}"
    world = build_world(home, online_url=online)
    shadow = register(world.registry, fitted_model(seed=1), world.trained_until, alias="shadow")
    key = make_keys(world.stores.database)["read"]
    world.stores.close()
    env = server_env(
        home,
        TASTEBUD_ONLINE_URL=online,
        TASTEBUD_MONITORING__SHADOW_SAMPLE="1.0",
        TASTEBUD_SERVING__POLL_SECONDS="0.5",
        TASTEBUD_GATEWAY__KEY_CACHE_SECONDS="0",
    )
    server = ServerProcess(env, free_port(), workers=2, log=tmp_path / "server.log").start()
    headers = {"X-API-Key": key}

    def status() -> dict[str, Any]:
        answer = httpx.get(f"{server.url}/v1/monitoring/shadow", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def until(condition: Any, seconds: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            document = status()
            if condition(document):
                return document
            assert time.monotonic() < deadline, (document, server.log.read_text()[-2000:])
            time.sleep(0.2)

    def serve(n: int) -> None:  # a connection each: the workers share the accepts
        with httpx.Client(headers=headers, timeout=30) as client:
            answer = client.get(f"{server.url}/v1/users/u{n % 12}/recommendations?k=5")
            assert answer.status_code == 200, answer.text

    try:
        until(lambda d: (d["fleet"] or {}).get("workers") == 2)  # both published at start
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(serve, range(LISTS)))
        done = until(lambda d: d["fleet"]["counts"].get("compared", 0) >= LISTS)
        merged = done["fleet"]
        assert merged["workers"] == 2
        assert merged["counts"]["compared"] == LISTS  # each list once, whoever served it
        assert merged["versions"][shadow]["comparisons"] == LISTS
        assert done["counts"]["compared"] <= LISTS  # the answering worker's own share
        printed = CliRunner().invoke(cli, ["monitor", "shadow", "--url", server.url, "--key", key])
        assert printed.exit_code == 0, printed.output
        assert "2 worker(s), merged" in printed.output and f"compared {LISTS}" in printed.output
    finally:
        server.stop()
