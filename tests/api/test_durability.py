"""The gateway's promises with real server processes (``tastebud serve --workers 2``), on the
embedded store and on PostgreSQL:

* concurrent replays of the same events through two workers: each stored once, and reported
  ``accepted`` exactly once across all responses;
* SIGKILL of the server (parent and workers) while a client streams batches with retries,
  then a restart: every acknowledged event is stored exactly once, and nothing is lost (on
  the embedded store, where durability is tastebud's own: SQLite WAL + Parquet segments).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.gateway_testing import ServerProcess, free_port, server_env
from tastebud.stores import open_database

BATCH = 20


def event(event_id: str, index: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": f"u{index % 17}",
        "item_id": f"i{index % 31}",
        "event_type": "play",
        "value": float(index),
        "timestamp": 1.7e9 + index,
    }


class Streamer(threading.Thread):
    """Sends numbered batches one after another; a batch that fails in any way (connection
    refused or reset, timeout, 5xx) is sent again until it is acknowledged with a 202."""

    def __init__(self, url: str, key: str, batches: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.key = key
        self.batches = batches
        self.acknowledged: list[str] = []
        self.statuses: Counter[str] = Counter()
        self.failures = 0
        self.sent_batches = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(headers={"X-API-Key": self.key}, timeout=5.0) as client:
                for number in range(self.batches):
                    ids = [f"b{number}-{i}" for i in range(BATCH)]
                    body = {"events": [event(i, number * BATCH + n) for n, i in enumerate(ids)]}
                    self._send(client, body)
                    self.sent_batches += 1
        except BaseException as error:
            self.error = error

    def _send(self, client: httpx.Client, body: dict[str, Any]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = client.post(f"{self.url}/v1/events", json=body)
            except httpx.TransportError:
                self.failures += 1
                time.sleep(0.05)
                continue
            if response.status_code != 202:
                assert response.status_code >= 500, response.text  # never a 4xx here
                self.failures += 1
                time.sleep(0.05)
                continue
            for result in response.json()["results"]:
                assert result["status"] in ("accepted", "duplicate"), result
                self.statuses[result["status"]] += 1
                self.acknowledged.append(result["event_id"])
            return
        raise TimeoutError("a batch was never acknowledged")


@pytest.mark.parametrize("backend", ["embedded", "postgres"])
def test_two_workers_store_each_event_once_across_replays_and_a_sigkill(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    variables = {}
    if backend == "postgres":
        variables["TASTEBUD_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    env = server_env(home, **variables)
    database_url = variables.get("TASTEBUD_DATABASE_URL") or f"embedded://{home / 'db'}"
    with open_database(database_url) as database:
        created = database.gateway.keys.create(["ingest"], "durability")
        assert created is not None
        key = created[1]
    server = ServerProcess(env, free_port(), workers=2, log=tmp_path / "server.log")
    server.start()
    try:
        # 1. Four clients replay the same 100 events at once, in different orders.
        events = [event(f"r{i}", i) for i in range(100)]

        def replay(order: int) -> list[dict[str, Any]]:
            ordered = events[order:] + events[:order]
            results = []
            with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:
                for start in range(0, 100, 25):
                    response = client.post(
                        f"{server.url}/v1/events", json={"events": ordered[start : start + 25]}
                    )
                    assert response.status_code == 202, response.text
                    results.extend(response.json()["results"])
            return results

        with ThreadPoolExecutor(4) as pool:
            outcomes = [r for rs in pool.map(replay, (0, 25, 50, 75)) for r in rs]
        accepted = Counter(r["event_id"] for r in outcomes if r["status"] == "accepted")
        assert sorted(accepted) == sorted(e["event_id"] for e in events)
        assert set(accepted.values()) == {1}
        assert sum(r["status"] == "duplicate" for r in outcomes) == 300

        with open_database(database_url) as database:
            stored = database.events.read_arrow().column("event_id").to_pylist()
        assert sorted(stored) == sorted(accepted)  # each stored once
        if backend == "postgres":
            return  # after a kill PostgreSQL keeps what it committed: phase 2 tests our side
        # 2. A client streams batches; the server is SIGKILLed mid-stream and restarted.
        streamer = Streamer(server.url, key, batches=60)
        streamer.start()
        deadline = time.monotonic() + 60
        while streamer.sent_batches < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        killed_after = streamer.sent_batches
        time.sleep(0.3)
        server.start()
        streamer.join(timeout=180)
        assert not streamer.is_alive() and streamer.error is None, streamer.error
        assert 15 <= killed_after < 60  # the kill happened mid-stream...
        assert streamer.failures > 0  # ...and the client saw it
    finally:
        server.stop()
    check_stored_once(database_url, streamer, events)


def check_stored_once(database_url: str, streamer: Streamer, events: list[dict[str, Any]]) -> None:
    with open_database(database_url) as database:
        stored = database.events.read_arrow().column("event_id").to_pylist()
    counts = Counter(stored)
    assert max(counts.values()) == 1  # nothing stored twice
    streamed = {f"b{n}-{i}" for n in range(60) for i in range(BATCH)}
    assert set(streamer.acknowledged) == streamed  # every batch was acknowledged in the end
    assert set(stored) == streamed | {e["event_id"] for e in events}  # and all of it is there
