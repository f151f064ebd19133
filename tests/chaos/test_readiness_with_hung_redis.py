"""``/readyz`` with the online store's Redis paused (SIGSTOP) and the embedded SQLite stores
healthy (issue 16): it answered after 12 s and called the SQLite stores unresponsive too.
It must answer within 1 s and blame only the online store, again and again."""

from __future__ import annotations

import time
from pathlib import Path

from api.gateway_testing import TestClient
from chaos.services import RedisServer, need

from tastebud.api.app import create_app
from tastebud.config import load_settings


def test_readyz_blames_only_the_hung_redis_and_answers_within_a_second(
    tmp_path: Path, home: Path
) -> None:
    need(RedisServer.available(), "redis-server")
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        settings = load_settings(home=home, online_url=redis_server.url)
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
            redis_server.pause()
            try:
                for _ in range(3):  # the breaker opens on the way; every answer is prompt
                    started = time.monotonic()
                    ready = client.get("/readyz")
                    assert time.monotonic() - started < 1.0
                    assert ready.status_code == 503
                    checks = ready.json()["checks"]
                    assert checks["online"] != "ok"
                    assert [checks[name] for name in ("events", "catalog", "dead_letters")] == [
                        "ok"
                    ] * 3, checks
            finally:
                redis_server.resume()
            time.sleep(settings.budgets.breaker_reset_seconds)
            assert client.get("/readyz").status_code == 200
    finally:
        redis_server.stop()
