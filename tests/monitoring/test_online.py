"""Online click-through and conversion per model version (tastebud.monitoring.online), from
the real exposure log and event store (embedded and PostgreSQL), in a world small enough that
every figure is known by hand; and the ``online`` check of a monitor run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tastebud.config import Settings, load_settings
from tastebud.experiments.exposure import Exposure
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.experiments.sources import events_reader
from tastebud.monitoring.online import online_by_version, online_check
from tastebud.observability import metrics
from tastebud.schemas import Event
from tastebud.stores import Stores, open_stores

AS_OF = datetime.now(UTC).replace(microsecond=0)
T0 = AS_OF - timedelta(hours=20)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def shown(list_id: str, hours: float, user: str | None, version: str | None, n: int,
          session: str | None = None) -> Exposure:  # fmt: skip
    return Exposure(
        list_id=list_id, served_at=at(hours), experiment=None, variant=None, user_id=user,
        session_id=session, items=tuple(f"i{k}" for k in range(n)), model_version=version,
        latency_ms=3.0,
    )  # fmt: skip


def event(name: str, user: str, kind: str, hours: float, list_id: str | None = None) -> Event:
    return Event(
        event_id=name, user_id=user, item_id="i1", event_type=kind, timestamp=at(hours),
        context={"list_id": list_id} if list_id else {},
    )  # fmt: skip


EXPOSURES = [
    shown("A1", 1, "u1", "v1", 4),
    shown("A2", 2, "u2", "v1", 4),
    shown("A3", 3, "u3", "v1", 2),
    shown("B1", 1, "u4", "v2", 5),
    shown("B2", 2, None, "v2", 5, session="tab-9"),
    shown("OLD", -30, "u9", "v1", 10),  # before the window: not judged
]
EVENTS = [
    event("e1", "u1", "click", 1.5, "A1"),  # exact
    event("e2", "u1", "click", 1.6),  # no list: within the window after A1
    event("e3", "u2", "purchase", 2.5, "A2"),  # exact: u2 converts
    event("e4", "u3", "click", 1.0),  # before u3's first exposure: not counted
    event("e5", "u4", "click", 1.2, "A1"),  # names v1's list: counts for v1 (exactly)
    event("e6", "u4", "like", 1.5),  # no list, after B1: u4 converts for v2
    event("e7", "tab-9", "click", 2.2, "B2"),  # an anonymous session, by its list
    event("e8", "u1", "play", 2.0, "A1"),  # not a click, purchase or like
]


def settings_of(tmp_path: Path, database_url: str | None) -> Settings:
    options = {"home": tmp_path, "online_url": "memory://"}
    if database_url is not None:
        options["database_url"] = database_url
    return load_settings(**options)


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, Stores]]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = settings_of(tmp_path, url)
    stores = open_stores(settings)
    stores.events.append(EVENTS)
    with open_exposure_log(settings, stores.database) as log:
        for exposure in EXPOSURES:
            log.append(exposure)
        log.flush()
    yield settings, stores
    stores.close()


def test_click_through_and_conversion_per_version(stored: tuple[Settings, Stores]) -> None:
    settings, stores = stored
    log = open_exposure_log(settings, stores.database)
    try:
        found = online_by_version(
            settings,
            lambda since, until: events_reader(stores.events, since, until),
            log.scan,
            since=AS_OF - timedelta(hours=24),
            until=AS_OF,
        )
    finally:
        log.close()
    assert sorted(found) == ["v1", "v2"]
    v1, v2 = found["v1"], found["v2"]
    assert (v1.lists, v1.items, v1.users) == (3, 10, 3)
    assert v1.clicks == 3  # e1, e2, e5
    assert v1.click_through == pytest.approx(0.3)
    assert v1.converted == 1 and v1.conversion == pytest.approx(1 / 3)  # u2
    assert (v2.lists, v2.items, v2.users) == (2, 10, 2)
    assert v2.clicks == 1 and v2.click_through == pytest.approx(0.1)  # e7
    assert v2.converted == 1 and v2.conversion == pytest.approx(0.5)  # u4


def test_the_online_check_records_every_version(stored: tuple[Settings, Stores]) -> None:
    settings, stores = stored
    check = online_check(stores, settings, "v2", AS_OF)
    assert check.status == "pass", check.message
    assert check.metrics["online.click_through"] == pytest.approx(0.1)
    assert check.metrics["online.conversion"] == pytest.approx(0.5)
    assert check.details["versions"]["v1"]["clicks"] == 3
    assert "v1: CTR 30.00%" in check.message
    gauge = metrics.registry.get_sample_value(
        "tastebud_model_online_click_through_ratio", {"model_version": "v1"}
    )
    assert gauge == pytest.approx(0.3)
    # Long after: no exposure in the window, so it cannot run (and clears once lists are served).
    later = online_check(stores, settings, "v2", AS_OF + timedelta(days=3))
    assert later.status == "error" and later.details == {"waiting": True}
    assert "no exposures" in later.message
