"""The gateway's retries of an event append run on the request thread, so they stay within
the request's budget (``[budgets] retry_ms``, ``tastebud.stores.retry``) whatever
``gateway.store_retries`` says. On a real PostgreSQL whose events table is held locked."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
from api.gateway_testing import gateway_settings

from tastebud.config import BudgetSettings
from tastebud.gateway.enrichment import RequestContext
from tastebud.gateway.ingestion import EventGateway
from tastebud.observability import metrics
from tastebud.stores import open_stores
from tastebud.stores.budget import within_budget


def retries() -> float:
    return metrics.registry.get_sample_value("tastebud_feedback_store_retries_total") or 0.0


def test_retries_of_a_request_end_within_its_budget(home: Path, postgres_url: str) -> None:
    # Each append gives up on the lock after 100 ms; 50 retries of up to 0.2 s more would
    # hold the request thread for about 10 s.
    url = postgres_url + quote(" -clock_timeout=100")
    settings = gateway_settings(
        home, url, store_retries=50, retry_base_seconds=0.2, retry_max_seconds=0.2
    )
    event = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "play"}
    with open_stores(settings) as stores:
        gateway = EventGateway(stores, settings)
        before = retries()
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with within_budget(BudgetSettings(retry_ms=600)):
                (outcome,) = gateway.ingest([event], RequestContext(None, None, datetime.now(UTC)))
            took = time.monotonic() - started
            holder.rollback()
        assert outcome.status == "rejected" and outcome.reasons == ["store_unavailable"]
        assert outcome.dead_letter_id is not None  # kept for `dlq retry`, not lost
        assert took < 1.5, took
        assert 1 <= retries() - before <= 5
