"""``tastebud keys``, ``tastebud dlq`` and the first-run admin key, through the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.gateway.enrichment import RequestContext
from tastebud.gateway.ingestion import EventGateway
from tastebud.gateway.keys import bootstrap_admin_key
from tastebud.stores import EventQuery, open_database, open_stores

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["dlq"],
        ["dlq", "list"],
        ["dlq", "inspect"],
        ["dlq", "retry"],
        ["dlq", "purge"],
    ],
    ids=" ".join,
)
def test_every_gateway_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_keys_create_list_revoke(home: Path) -> None:
    created = runner.invoke(app, ["keys", "create", "--scope", "ingest,read", "--name", "web"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("tb_")
    with open_database(load_settings().resolved_database_url) as database:
        key = database.gateway.keys.authenticate(secret)
        assert key is not None and key.scopes == ("ingest", "read") and key.name == "web"
    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert listed.exit_code == 0
    assert secret not in listed.stdout
    (entry,) = json.loads(listed.stdout)
    assert entry["key_id"] == key.key_id and entry["revoked_at"] is None
    assert runner.invoke(app, ["keys", "revoke", key.key_id]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", key.key_id])
    assert again.exit_code == 1 and "no active key" in again.output
    with open_database(load_settings().resolved_database_url) as database:
        assert database.gateway.keys.authenticate(secret) is None
    bad = runner.invoke(app, ["keys", "create", "--scope", "ingest,superuser"])
    assert bad.exit_code == 2 and "scopes must be among" in bad.output


def test_the_first_admin_key_is_created_once_on_the_embedded_store(home: Path) -> None:
    settings = load_settings()
    with open_database(settings.resolved_database_url) as database:
        secret = bootstrap_admin_key(settings, database)
        assert secret is not None
        assert database.gateway.keys.authenticate(secret).scopes == ("admin",)  # type: ignore[union-attr]
        assert bootstrap_admin_key(settings, database) is None
        assert len(database.gateway.keys.list_keys()) == 1
    off = load_settings(gateway={"bootstrap_admin_key": False})
    with open_database(f"embedded://{home / 'other'}") as database:
        assert bootstrap_admin_key(off, database) is None


def dead_letter_some_events() -> None:
    """Two events of a type not configured yet, one with a bad timestamp, one good, and one
    of the new type without a timestamp."""
    settings = load_settings(online_url="memory://")
    with open_stores(settings) as stores:
        gateway = EventGateway(stores, settings)
        events = [
            {"event_id": "s1", "user_id": "u", "item_id": "i", "event_type": "stream",
             "timestamp": 1.7e9},
            {"event_id": "s2", "user_id": "u", "item_id": "j", "event_type": "stream",
             "timestamp": 1.7e9},
            {"event_id": "t1", "user_id": "u", "item_id": "k", "event_type": "play",
             "timestamp": "soon"},
            {"event_id": "g1", "user_id": "u", "item_id": "k", "event_type": "play",
             "timestamp": 1.7e9},
            {"event_id": "n1", "user_id": "u", "item_id": "n", "event_type": "stream"},
        ]  # fmt: skip
        outcomes = gateway.ingest(events, RequestContext(None, None, datetime.now(UTC)))
        statuses = [o.status for o in outcomes]
        assert statuses == ["rejected", "rejected", "rejected", "accepted", "rejected"]


def test_dlq_list_inspect_retry_purge(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_letter_some_events()
    listed = runner.invoke(app, ["dlq", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert document["total"] == 4 and document["dropped"] == {"cap": 0, "ttl": 0}
    reasons = {entry["event_id"]: entry["reasons"] for entry in document["entries"]}
    assert reasons == {
        "s1": ["unknown_event_type"],
        "s2": ["unknown_event_type"],
        "t1": ["timestamp_invalid"],
        "n1": ["unknown_event_type"],
    }
    assert "payload" not in document["entries"][0]
    table = runner.invoke(app, ["dlq", "list"])
    assert table.exit_code == 0 and "4 entries" in table.stdout

    first = document["entries"][0]["id"]
    inspected = runner.invoke(app, ["dlq", "inspect", str(first)])
    assert inspected.exit_code == 0
    assert json.loads(inspected.stdout)["payload"]["event_type"] == "stream"
    assert runner.invoke(app, ["dlq", "inspect", "999999"]).exit_code == 1

    # Nothing can be stored yet: attempts are counted, entries stay.
    unchanged = runner.invoke(app, ["dlq", "retry", "--all", "--json"])
    assert json.loads(unchanged.stdout)["still_invalid"] == 4
    # Configure the new event type: the stream events now validate and are stored; the one
    # sent without a timestamp is dated when it was received (queued).
    monkeypatch.setenv("TASTEBUD_EVENTS__TYPES__STREAM__WEIGHT", "2.0")
    retried = runner.invoke(app, ["dlq", "retry", "--all", "--json"])
    assert retried.exit_code == 1, retried.output  # one letter is still invalid
    report = json.loads(retried.stdout)
    assert (report["stored"], report["duplicates"], report["still_invalid"]) == (3, 0, 1)
    with open_database(load_settings().resolved_database_url) as database:
        assert sorted(database.events.existing_ids(["s1", "s2", "t1", "g1", "n1"])) == [
            "g1",
            "n1",
            "s1",
            "s2",
        ]
        (undated,) = database.events.scan(EventQuery(item_ids=["n"]))
        assert abs((datetime.now(UTC) - undated.timestamp).total_seconds()) < 300
        (left,) = database.gateway.dead_letters.list_entries()
        assert left.event_id == "t1" and left.attempts == 3

    assert runner.invoke(app, ["dlq", "retry"]).exit_code == 2  # ids or --all
    assert runner.invoke(app, ["dlq", "purge"]).exit_code == 2
    purged = runner.invoke(app, ["dlq", "purge", "--all"])
    assert purged.exit_code == 0 and "removed 1 entries" in purged.stdout
    assert json.loads(runner.invoke(app, ["dlq", "list", "--json"]).stdout)["total"] == 0
