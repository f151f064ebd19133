"""A real app with a real experiment for the analysis and guardrail tests: the served world
(catalog, a trained model in the registry), definitions PUT and started over the API, lists
served to users and their clicks posted back naming the list (``context.list_id``)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ranking.serving_world import World, build_world

from api.gateway_testing import TestClient, make_keys
from tastebud.api.app import create_app

# Every candidate source off and one candidate at most: the variant serves one-item lists (a
# seeded guardrail breach). Popular items always come, k of them, so no override empties a list.
STARVED = {
    "candidates": {"cf": 0, "content": 0, "trending": 0, "popular": 0, "fresh": 0, "max_total": 1}
}
# Items per served list: the guardrail the starved variant breaches.
LIST_LENGTH = {
    "description": "Items per served list.",
    "kind": "ratio",
    "numerator": {"source": "exposures", "aggregate": "items"},
    "denominator": {"source": "exposures", "aggregate": "lists"},
}
POLL_SECONDS = 0.2


def two_arms(key: str, treatment: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A 50/50 definition whose second arm is ``treatment`` (default: a diluted blend)."""
    arm = {"name": "treatment", "weight": 0.5, "ranking": {"blend": {"alpha": 0.5}}}
    return {
        "key": key,
        "variants": [{"name": "control", "weight": 0.5}, {**arm, **(treatment or {})}],
        "goals": ["click_through"],
        **fields,
    }


class Lab:
    """The app over ``world``'s stores, with one API key per scope."""

    def __init__(self, home: Path, **settings: Any) -> None:
        experiments = {"poll_seconds": POLL_SECONDS, **settings.pop("experiments", {})}
        self.world: World = build_world(home, experiments=experiments, **settings)
        self.keys = make_keys(self.world.stores.database)
        self.http = TestClient(create_app(self.world.settings), raise_server_exceptions=True)
        self.http.__enter__()

    def close(self) -> None:
        self.http.__exit__(None, None, None)
        self.world.stores.close()

    def headers(self, scope: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[scope]}

    def define(self, body: dict[str, Any], start: bool = True) -> None:
        """PUT ``body`` and start it; return once this worker's watcher serves it."""
        key = body["key"]
        answer = self.http.put(f"/v1/experiments/{key}", json=body, headers=self.headers("admin"))
        assert answer.status_code == 201, answer.text
        if start:
            started = self.http.post(f"/v1/experiments/{key}/start", headers=self.headers("admin"))
            assert started.status_code == 200, started.text
            self.wait(lambda: self.serve("probe")["experiment"] == key)

    def wait(self, condition: Any, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "not within the time allowed"
            time.sleep(POLL_SECONDS / 2)

    def serve(self, user: str, k: int = 5) -> dict[str, Any]:
        answer = self.http.get(
            f"/v1/users/{user}/recommendations", params={"k": k}, headers=self.headers("read")
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def click(self, body: dict[str, Any], positions: int = 1) -> None:
        """The user clicks the first ``positions`` items of the list ``body`` served."""
        events = [
            {
                "event_id": f"ev-{uuid.uuid4().hex}",
                "user_id": body["user_id"],
                "item_id": item["item_id"],
                "event_type": "click",
                "timestamp": datetime.now(UTC).isoformat(),
                "context": {"list_id": body["list_id"], "position": index + 1},
            }
            for index, item in enumerate(body["items"][:positions])
        ]
        if not events:
            return
        answer = self.http.post(
            "/v1/events", json={"events": events}, headers=self.headers("ingest")
        )
        assert answer.status_code == 202, answer.text

    def exposures(self) -> list[dict[str, Any]]:
        """Every exposure this app logged (flushed first)."""
        log = self.http.app.state.recommendations.experiments.exposures  # type: ignore[attr-defined]
        log.flush()
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = log.scan(
            now - timedelta(hours=1), now + timedelta(hours=1)
        ).to_pylist()
        return rows

    def analysis(self, key: str) -> Any:
        return self.http.get(f"/v1/experiments/{key}/analysis", headers=self.headers("read"))
