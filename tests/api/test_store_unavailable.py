"""The store-unavailable path on PostgreSQL: the events table is paused (held under an
exclusive lock by another session, so appends time out) mid-stream. The gateway retries with
backoff, then dead-letters the events and says so per event; an alert fires; once the table is
back, ``tastebud dlq retry`` stores them, each once. With the DLQ paused too, the request is a
503 and nothing is acknowledged. (An unreachable database at start-up is the CLI's exit 3,
tested in test_cli.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from typer.testing import CliRunner

from api.gateway_testing import TestClient, gateway_settings, make_keys
from tastebud.api.app import create_app
from tastebud.cli.main import app as cli
from tastebud.observability import metrics
from tastebud.stores import EventQuery, open_database


@contextmanager
def paused(url: str, *tables: str) -> Iterator[None]:
    """Hold an exclusive lock on tables until the block ends, as a stuck migration or a
    hung server would: every write to them waits (and times out)."""
    with psycopg.connect(url) as connection:
        connection.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        yield
        connection.rollback()


def batch(start: int, count: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "event_id": f"e{n}",
                "user_id": f"u{n % 3}",
                "item_id": f"i{n}",
                "event_type": "click",
                "timestamp": 1.7e9 + n,
            }
            for n in range(start, start + count)
        ]
    }


def sample(name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_retries_then_dead_letter_then_recovery_with_dlq_retry(
    home: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Appends give up on a held lock after 300 ms instead of waiting forever.
    url = postgres_url + quote(" -clock_timeout=300")
    settings = gateway_settings(
        home,
        url,
        store_retries=2,
        retry_base_seconds=0.05,
        alert_min_events=10,
        alert_dlq_share=0.2,
    )
    retries_before = sample("tastebud_feedback_store_retries_total")
    recovered_before = sample("tastebud_feedback_retry_success_count_total", source="dlq")
    with open_database(url) as database:
        headers = {"X-API-Key": make_keys(database)["ingest"]}
        with TestClient(create_app(settings)) as client:
            assert (
                client.post("/v1/events", json=batch(0, 10), headers=headers).json()["accepted"]
                == 10
            )
            with paused(url, "events"):
                response = client.post("/v1/events", json=batch(10, 10), headers=headers)
                assert response.status_code == 202, response.text
                document = response.json()
                assert document["rejected"] == 10
                for result in document["results"]:
                    assert result["status"] == "rejected"
                    assert result["reasons"] == ["store_unavailable"]
                    assert result["dead_letter_id"] is not None
                assert client.get("/readyz").status_code == 503  # the event store is stuck
            assert sample("tastebud_feedback_store_retries_total") - retries_before == 2
            assert database.events.count() == 10
            letters = database.gateway.dead_letters.list_entries()
            assert [entry.kind for entry in letters] == ["transient"] * 10
            assert "dlq_share_above_threshold" in capsys.readouterr().out

            # The DLQ is paused as well: nothing can be kept, so nothing is acknowledged.
            with paused(url, "events", "dead_letters"):
                refused = client.post("/v1/events", json=batch(20, 5), headers=headers)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "store_unavailable"
            assert int(refused.headers["retry-after"]) >= 1
            assert database.events.count() == 10

        # The store is back: the dlq-retry job replays the transient dead letters.
        monkeypatch.setenv("TASTEBUD_DATABASE_URL", url)
        result = CliRunner().invoke(cli, ["jobs", "run", "dlq-retry", "--json"])
        assert result.exit_code == 0, result.output
        output = json.loads(result.stdout)["output"]
        assert output == {"stored": 10, "duplicates": 0, "still_invalid": 0,
                          "remaining_transient": 0}  # fmt: skip
        assert database.gateway.dead_letters.count() == 0
        stored = database.events.read_arrow().column("event_id").to_pylist()
        assert sorted(stored) == sorted(f"e{n}" for n in range(20))
        (stored_event,) = database.events.scan(EventQuery(item_ids=["i15"]))
        assert stored_event.session_id is not None  # enriched before it was dead-lettered
        recovered = sample("tastebud_feedback_retry_success_count_total", source="dlq")
        assert recovered - recovered_before == 10
        # Retrying again is harmless.
        again = CliRunner().invoke(cli, ["dlq", "retry", "--all"])
        assert again.exit_code == 0 and "stored 0" in again.stdout
