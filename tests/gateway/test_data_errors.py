"""Errors classified once (``tastebud.stores.errors``): a store refusing the data is
permanent -- rejected or dead-lettered as such, never retried as an outage, and the good
events of the batch are stored; only unavailability is transient. ``dlq retry`` reports a
bad letter and goes on (issue 16: a NUL in a context was retried 4 times as an outage, took
the good event of its batch into the dead-letter queue, then crashed ``dlq retry``).

The text rule (``schemas.check_storable``) refuses NUL before any store sees it; to reach
the store's own refusal these tests switch that rule off, as a gap in it would."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api.gateway_testing import gateway_settings
from typer.testing import CliRunner

import tastebud.schemas
from tastebud.cli.main import app as cli
from tastebud.gateway.dlq import retry_entries
from tastebud.gateway.enrichment import RequestContext
from tastebud.gateway.ingestion import EventGateway
from tastebud.schemas import Item
from tastebud.stores import (
    StoreDataError,
    StoreUnavailable,
    open_database,
    open_stores,
)
from tastebud.stores.dead_letters import DeadLetter
from tastebud.stores.errors import is_permanent, is_transient


@pytest.fixture
def without_text_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tastebud.schemas, "_first_unstorable", lambda *_, **__: None)


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "play",
        "timestamp": "2025-01-01T00:00:00Z",
        **fields,
    }


def test_real_driver_errors_are_classified(postgres_url: str, tmp_path: Path) -> None:
    with psycopg.connect(postgres_url) as connection, pytest.raises(psycopg.Error) as nul:
        connection.execute("SELECT %s::text", ("a\x00b",))
    with psycopg.connect(postgres_url) as connection, pytest.raises(psycopg.Error) as number:
        connection.execute("SELECT 1 / 0")
    lite = sqlite3.connect(tmp_path / "x.db")
    lite.execute("CREATE TABLE t (a TEXT NOT NULL)")
    with pytest.raises(sqlite3.IntegrityError) as integrity:
        lite.execute("INSERT INTO t VALUES (NULL)")
    with pytest.raises(UnicodeEncodeError) as surrogate:
        "a\ud800".encode()
    for error in (nul.value, number.value, integrity.value, surrogate.value, StoreDataError("x")):
        assert is_permanent(error) and not is_transient(error), error
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    for error in (refused.value, sqlite3.OperationalError("database is locked")):
        assert not is_permanent(error), error
    assert is_transient(StoreUnavailable("down")) and not is_permanent(StoreUnavailable("down"))
    assert not is_permanent(TypeError("a bug"))


@pytest.fixture(params=["embedded", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "embedded" else request.getfixturevalue("postgres_url")


def test_the_stores_raise_a_data_error_for_data_they_cannot_keep(
    home: Path, postgres_url: str
) -> None:
    settings = gateway_settings(home, postgres_url)
    with open_stores(settings) as stores:
        bad = Item.model_construct(item_id="i1", title="a\x00b", categories=[], attributes={})
        with pytest.raises(StoreDataError):
            stores.catalog.upsert_items([bad])
        good = Item(item_id="i2", title="fine")
        assert stores.catalog.upsert_items([good]) == 1  # the pool and breaker are fine


def test_a_refused_event_is_rejected_alone_and_never_retried(
    home: Path, postgres_url: str, without_text_rule: None
) -> None:
    settings = gateway_settings(home, postgres_url, store_retries=3, retry_base_seconds=0.01)
    slept: list[float] = []
    with open_stores(settings) as stores:
        gateway = EventGateway(stores, settings, sleep=slept.append)
        outcomes = gateway.ingest(
            [_event("good-1"), _event("bad-1", context={"page": "a\x00b"}), _event("good-2")],
            RequestContext(None, None, received_at=datetime.now(UTC)),
        )
        assert [(o.status, o.reasons) for o in outcomes] == [
            ("accepted", []),
            ("rejected", ["unstorable"]),
            ("accepted", []),
        ]
        assert slept == []  # a refusal is not an outage
        assert sorted(stores.events.existing_ids(["good-1", "bad-1", "good-2"])) == [
            "good-1",
            "good-2",
        ]
        letter = stores.database.gateway.dead_letters.get(outcomes[1].dead_letter_id or -1)
        assert letter is not None and letter.kind == "invalid"
        assert letter.reasons == ("unstorable",)


def _letters(database: Any, payloads: list[dict[str, Any]]) -> list[int]:
    return database.gateway.dead_letters.add(
        [
            DeadLetter(
                kind="transient",
                payload=json.dumps(payload),
                reasons=("store_unavailable",),
                event_id=payload["event_id"],
            )
            for payload in payloads
        ],
        max_entries=1000,
        ttl_seconds=3600,
    )


def test_dlq_retry_reports_a_bad_letter_and_stores_the_rest(
    home: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Letters as an older version queued them (a NUL in a context, kept as transient): the
    CLI stores the good one, reports the bad one, exits 1, and prints no traceback."""
    settings = gateway_settings(home, database_url)
    if database_url:
        monkeypatch.setenv("TASTEBUD_DATABASE_URL", database_url)
    with open_database(settings.resolved_database_url) as database:
        ids = _letters(
            database,
            [_event("good-1"), _event("bad-1", context={"page": "a\x00b"}), _event("good-2")],
        )
    result = CliRunner().invoke(cli, ["dlq", "retry", "--all", "--kind", "transient", "--json"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    report = json.loads(result.stdout)
    assert (report["stored"], report["still_invalid"]) == (2, 1)
    assert report["still_invalid_ids"] == [ids[1]]
    with open_database(settings.resolved_database_url) as database:
        assert sorted(database.events.existing_ids(["good-1", "bad-1", "good-2"])) == [
            "good-1",
            "good-2",
        ]
        kept = database.gateway.dead_letters.get(ids[1])
        assert kept is not None and "invalid_text" in kept.reasons


def test_dlq_retry_isolates_what_the_store_refuses(
    home: Path, postgres_url: str, without_text_rule: None
) -> None:
    settings = gateway_settings(home, postgres_url)
    with open_database(postgres_url) as database:
        ids = _letters(
            database,
            [_event("good-1"), _event("bad-1", context={"page": "a\x00b"}), _event("good-2")],
        )
        entries = [database.gateway.dead_letters.get(entry_id) for entry_id in ids]
        report = retry_entries(database, settings, entries)  # type: ignore[arg-type]
        assert sorted(report.stored) == [ids[0], ids[2]]
        assert report.still_invalid == {ids[1]: ["unstorable"]}
        assert database.gateway.dead_letters.get(ids[0]) is None
        kept = database.gateway.dead_letters.get(ids[1])
        assert kept is not None and kept.reasons == ("unstorable",)
