"""tastebud.client against a live server: events, catalog, errors, retries."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from api.gateway_testing import LiveServer, gateway_settings, make_keys
from tastebud.client import GatewayError, TastebudClient
from tastebud.observability import metrics
from tastebud.schemas import Event, Item
from tastebud.stores import open_database


def test_client_events_and_catalog(home: Path) -> None:
    settings = gateway_settings(home)
    with open_database(settings.resolved_database_url) as database:
        keys = make_keys(database)
        with (
            LiveServer(settings) as server,
            TastebudClient(server.url, keys["admin"], batch_size=3) as client,
        ):
            assert client.healthy() and client.ready()
            events: list[object] = [
                Event(
                    event_id=f"e{i}",
                    user_id="u1",
                    item_id=f"i{i}",
                    event_type="view",
                    timestamp=1.7e9 + i,
                    context={"n": i},
                )
                for i in range(5)
            ]
            bad = {"user_id": "u1", "item_id": "x", "event_type": "jump", "timestamp": 1}
            events.insert(2, bad)
            result = client.send_events(events)  # type: ignore[arg-type]
            assert (result.accepted, result.rejected, result.duplicates) == (5, 1, 0)
            assert [r["index"] for r in result.results] == list(range(6))
            (rejected,) = result.rejected_results()
            assert rejected["index"] == 2 and "unknown_event_type" in rejected["reasons"]
            assert client.send_event(events[0])["status"] == "duplicate"  # type: ignore[arg-type]
            assert database.events.count() == 5

            items = [Item(item_id="a/b#1", title="slash and hash"), {"item_id": "plain"}]
            assert client.upsert_items(items).upserted == 2
            assert client.get_item("a/b#1")["title"] == "slash and hash"  # type: ignore[index]
            assert client.get_item("missing") is None
            assert client.upsert_users([{"user_id": "u1"}]).upserted == 1
            assert client.get_user("u1")["user_id"] == "u1"  # type: ignore[index]

            with TastebudClient(server.url, keys["read"]) as reader:
                with pytest.raises(GatewayError) as raised:
                    reader.send_event({"user_id": "u", "item_id": "i"})
                assert raised.value.status == 403 and raised.value.code == "insufficient_scope"


def test_client_retries_rate_limits(home: Path) -> None:
    settings = gateway_settings(home, rate_limit_per_second=5.0, rate_limit_burst=1)
    labels = {"method": "POST", "route": "/v1/events", "status": "429"}
    limited_before = metrics.registry.get_sample_value("tastebud_http_requests_total", labels)
    with open_database(settings.resolved_database_url) as database:
        key = make_keys(database)["ingest"]
        with LiveServer(settings) as server, TastebudClient(server.url, key, retries=20) as client:
            statuses = [
                client.send_event(
                    {"user_id": "u", "item_id": f"i{i}", "event_type": "like", "timestamp": 1.7e9}
                )["status"]
                for i in range(6)
            ]
        assert statuses == ["accepted"] * 6
        limited = metrics.registry.get_sample_value("tastebud_http_requests_total", labels)
        assert (limited or 0) > (limited_before or 0)  # some were answered 429, then retried
        assert database.events.count() == 6


def test_client_retries_network_errors_then_raises() -> None:
    # A port nobody listens on: each attempt is refused (a network error, transient).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sent: list[httpx.Request] = []
    slept: list[float] = []
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", event_hooks={"request": [sent.append]})
    client = TastebudClient(
        "", retries=3, backoff_seconds=0.05, max_backoff_seconds=0.1, http=http, sleep=slept.append
    )
    with client, pytest.raises(httpx.ConnectError):
        client.send_event({"user_id": "u", "item_id": "i", "event_type": "like"})
    assert len(sent) == 4 and len(slept) == 3
    assert 0 <= slept[0] <= 0.05 and all(0 <= s <= 0.1 for s in slept)


def test_client_does_not_retry_what_cannot_succeed() -> None:
    slept: list[float] = []
    http = httpx.Client(base_url="ftp://127.0.0.1")
    client = TastebudClient("", retries=3, http=http, sleep=slept.append)
    with client, pytest.raises(httpx.UnsupportedProtocol):
        client.get_item("x")
    assert slept == []  # a bad scheme is refused once, not retried
