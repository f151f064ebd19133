"""Enrichment: device type from User-Agent, locale from Accept-Language, sessions by
per-user inactivity gap (shared through the online store), received_at."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tastebud.gateway.enrichment import (
    RequestContext,
    Sessionizer,
    device_from_user_agent,
    enrich,
    locale_from_accept_language,
)
from tastebud.schemas import DeviceType, Event
from tastebud.stores import OnlineStore, open_online_store

T0 = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)
GAP = 1800.0


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/120.0 Safari/537.36",
            DeviceType.web,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2"
            " Safari/605.1.15",
            DeviceType.web,
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", DeviceType.web),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15"
            " Mobile/15E148",
            DeviceType.mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0"
            " Mobile Safari/537.36",
            DeviceType.mobile,
        ),
        ("Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X)", DeviceType.mobile),
        ("okhttp/4.12.0", DeviceType.mobile),
        ("MyApp/3.1 CFNetwork/1490.0.4 Darwin/23.2.0", DeviceType.mobile),
        ("curl/8.5.0", DeviceType.other),
        ("python-httpx/0.28.1", DeviceType.other),
        ("Mozilla/5.0 (compatible; Googlebot/2.1)", DeviceType.other),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0", DeviceType.other),
        ("", None),
        (None, None),
    ],
)
def test_device_from_user_agent(user_agent: str | None, expected: DeviceType | None) -> None:
    assert device_from_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr-CH"),
        ("en;q=0.5, pt-BR", "pt-BR"),
        ("de;q=0.7, en-GB;q=0.7", "de"),  # ties keep header order
        ("*", None),
        ("en;q=0", None),
        ("en_US", "en-US"),
        ("not a tag!!, es;q=0.4", "es"),
        ("es;q=abc, it;q=0.1", "it"),
        ("", None),
        (None, None),
    ],
)
def test_locale_from_accept_language(header: str | None, expected: str | None) -> None:
    assert locale_from_accept_language(header) == expected


@pytest.fixture(params=["memory", "sqlite", "redis"])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite://{tmp_path / 'online.db'}",
    }.get(request.param) or request.getfixturevalue("redis_url")
    with open_online_store(url) as store:
        yield store


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_sessions_split_on_the_inactivity_gap(online: OnlineStore) -> None:
    sessions = Sessionizer(online, GAP)
    first = sessions.assign([("u1", at(0)), ("u1", at(10)), ("u2", at(10))])
    assert first[0] == first[1] != first[2]
    # 29 minutes after the last event: same session; 31 minutes after: a new one.
    assert sessions.assign([("u1", at(39))]) == [first[0]]
    later = sessions.assign([("u1", at(70))])
    assert later != [first[0]]
    # A late event inside the current session's window joins it.
    assert sessions.assign([("u1", at(55))]) == later
    # A much older event gets a session of its own and leaves the current one alone.
    old = sessions.assign([("u1", at(-500))])
    assert old not in (later, [first[0]])
    assert sessions.assign([("u1", at(80))]) == later


def test_sessions_are_shared_by_every_worker(online: OnlineStore) -> None:
    """Two Sessionizers over the same store stand for two server workers."""
    worker_a, worker_b = Sessionizer(online, GAP), Sessionizer(online, GAP)
    (session,) = worker_a.assign([("u9", at(0))])
    assert worker_b.assign([("u9", at(20))]) == [session]
    assert worker_a.assign([("u9", at(45))]) == [session]  # 25 minutes after worker b's event


def test_batch_order_does_not_matter() -> None:
    from tastebud.stores.online import MemoryOnlineStore

    forward = Sessionizer(MemoryOnlineStore(), GAP).assign([("u", at(0)), ("u", at(20))])
    backward = Sessionizer(MemoryOnlineStore(), GAP).assign([("u", at(20)), ("u", at(0))])
    assert forward[0] == forward[1] == backward[0] == backward[1]


def event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "play",
        "timestamp": at(0),
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_enrich_fills_only_what_is_missing() -> None:
    from tastebud.stores.online import MemoryOnlineStore

    received = datetime(2026, 1, 1, tzinfo=UTC)
    context = RequestContext("Mozilla/5.0 (iPhone)", "de-AT, de;q=0.8", received)
    sent = [
        event(),
        event(event_id="e2", session_id="mine", device_type="web", locale="en-US"),
        event(event_id="e3", received_at=datetime(2020, 1, 1, tzinfo=UTC)),
    ]
    enriched = enrich(sent, context, Sessionizer(MemoryOnlineStore(), GAP))
    assert enriched[0].device_type == DeviceType.mobile and enriched[0].locale == "de-AT"
    assert enriched[0].session_id is not None and enriched[0].session_id.startswith("s-")
    assert (enriched[1].session_id, enriched[1].device_type, enriched[1].locale) == (
        "mine",
        DeviceType.web,
        "en-US",
    )
    assert all(e.received_at == received for e in enriched)  # always the server's
    assert enriched[2].session_id == enriched[0].session_id
    # Without a session store, everything else is still filled in.
    bare = enrich([event()], context, None)
    assert bare[0].session_id is None and bare[0].device_type == DeviceType.mobile


def test_an_active_users_state_is_rewritten_only_when_it_moved_enough() -> None:
    """Reads for most events, a write per `resolution` (gap / 30): the gap is judged to
    within that, and the shared store is not written once per event."""
    from tastebud.stores.online import MemoryOnlineStore

    online = MemoryOnlineStore()
    sessions = Sessionizer(online, GAP)
    assert sessions.resolution == 60
    (session,) = sessions.assign([("u", at(0))])
    stored = online.get("gw:session:u")
    assert sessions.assign([("u", at(0.5))]) == [session]
    assert online.get("gw:session:u") == stored  # 30 s later: not written
    assert sessions.assign([("u", at(1.5))]) == [session]
    assert online.get("gw:session:u") != stored  # 90 s later: written
    assert online.get("gw:session:u") == f"{session}|{at(1.5).timestamp()!r}".encode()
