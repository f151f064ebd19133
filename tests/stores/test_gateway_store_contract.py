"""The ApiKeyStore and DeadLetterStore contracts, run against every backend (embedded,
PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tastebud.stores import Database, open_database, open_gateway_stores
from tastebud.stores.dead_letters import DeadLetter
from tastebud.stores.keys import hash_key


@pytest.fixture(params=["embedded", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with open_database(url) as database:
        yield database


def letter(index: int, **changes: object) -> DeadLetter:
    fields: dict[str, object] = {
        "kind": "invalid" if index % 2 else "transient",
        "payload": f'{{"n": {index}, "text": "ünïcode ♫"}}',
        "reasons": ("unknown_event_type", "timestamp_invalid") if index % 2 else ("x",),
        "message": f"message {index}",
        "event_id": f"e{index}",
        "key_id": "k1",
        "request_id": f"r{index}",
    }
    fields.update(changes)
    return DeadLetter(**fields)  # type: ignore[arg-type]


# --- API keys ------------------------------------------------------------------------------


def test_keys_are_stored_hashed_and_authenticate(database: Database) -> None:
    keys = database.gateway.keys
    created = keys.create(["ingest", "read"], "producer", rate_per_second=5.0, burst=10.0)
    assert created is not None
    record, secret = created
    assert secret.startswith("tb_") and record.key_id in secret
    found = keys.authenticate(secret)
    assert found == record
    assert found.allows("ingest") and found.allows("read") and not found.allows("admin")
    assert keys.find(secret) is None  # the secret itself is not what is stored
    assert keys.find(hash_key(secret)) == record
    assert keys.authenticate(secret + "x") is None
    assert keys.authenticate("not-a-key") is None


def test_gateway_stores_opened_alone_share_the_database(database: Database) -> None:
    """``tastebud keys`` and ``dlq`` open only these (no event store) and see the same keys
    and letters; closing them releases what they opened."""
    created = database.gateway.keys.create(["read"], "shared")
    assert created is not None
    with open_gateway_stores(database.url) as alone:
        assert [key.key_id for key in alone.keys.list_keys()] == [created[0].key_id]
        alone.dead_letters.add([letter(1)], max_entries=10, ttl_seconds=3600)
    assert database.gateway.dead_letters.count() == 1


def test_admin_implies_every_scope_and_bad_scopes_are_refused(database: Database) -> None:
    created = database.gateway.keys.create(["admin"])
    assert created is not None
    assert all(created[0].allows(scope) for scope in ("ingest", "read", "admin"))
    with pytest.raises(ValueError, match="scopes"):
        database.gateway.keys.create(["ingest", "root"])
    with pytest.raises(ValueError, match="scopes"):
        database.gateway.keys.create([])


def test_list_and_revoke(database: Database) -> None:
    keys = database.gateway.keys
    first = keys.create(["ingest"], "a")
    second = keys.create(["read"], "b")
    assert first is not None and second is not None
    assert [key.name for key in keys.list_keys()] == ["a", "b"]
    assert keys.revoke(first[0].key_id)
    assert not keys.revoke(first[0].key_id)  # already revoked
    assert not keys.revoke("nope")
    assert keys.authenticate(first[1]) is None
    assert keys.authenticate(second[1]) is not None
    listed = {key.key_id: key for key in keys.list_keys()}
    assert listed[first[0].key_id].revoked_at is not None
    assert listed[second[0].key_id].active


def test_first_key_is_created_once_under_concurrency(database: Database) -> None:
    keys = database.gateway.keys

    def attempt(_: int) -> bool:
        return keys.create(["admin"], "first", only_if_empty=True) is not None

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 1
    assert len(keys.list_keys()) == 1


# --- dead-letter queue ---------------------------------------------------------------------


def test_dead_letters_round_trip(database: Database) -> None:
    letters = database.gateway.dead_letters
    ids = letters.add([letter(i) for i in range(5)], max_entries=100, ttl_seconds=3600)
    assert len(ids) == 5 and ids == sorted(ids)
    entry = letters.get(ids[1])
    assert entry is not None
    expected = letter(1, entry_id=ids[1], created_at=entry.created_at)
    assert entry == expected
    assert letters.get(10**9) is None
    assert letters.count() == 5
    assert letters.count(kind="invalid") == 2
    assert [e.entry_id for e in letters.list_entries(kind="transient")] == [ids[0], ids[2], ids[4]]
    page = letters.list_entries(after_id=ids[1], limit=2)
    assert [e.entry_id for e in page] == ids[2:4]


def test_delete_purge_and_attempts(database: Database) -> None:
    letters = database.gateway.dead_letters
    old = time.time() - 1000
    ids = letters.add(
        [letter(0, created_at=old), letter(1, created_at=old), letter(2), letter(3)],
        max_entries=100,
        ttl_seconds=3600,
    )
    letters.record_attempt(ids[2], ["value_invalid"], "still bad")
    again = letters.get(ids[2])
    assert again is not None
    assert again.attempts == 2 and again.reasons == ("value_invalid",)
    assert again.message == "still bad"
    assert letters.delete([ids[3], 10**9]) == 1
    assert letters.purge(older_than=time.time() - 500) == 2
    assert [e.entry_id for e in letters.list_entries()] == [ids[2]]
    assert letters.purge(kind="invalid") == 0
    assert letters.purge() == 1
    assert letters.count() == 0


def test_size_cap_drops_the_oldest_and_counts_them(database: Database) -> None:
    letters = database.gateway.dead_letters
    first = letters.add([letter(i) for i in range(4)], max_entries=3, ttl_seconds=3600)
    assert letters.count() == 3
    assert [e.entry_id for e in letters.list_entries()] == first[1:]
    letters.add([letter(9)], max_entries=3, ttl_seconds=3600)
    assert letters.count() == 3
    assert letters.dropped().cap == 2
    assert letters.dropped().ttl == 0


def test_ttl_drops_expired_entries_and_counts_them(database: Database) -> None:
    letters = database.gateway.dead_letters
    letters.add([letter(0, created_at=time.time() - 100)], max_entries=10, ttl_seconds=3600)
    letters.add([letter(1)], max_entries=10, ttl_seconds=50)
    assert [e.event_id for e in letters.list_entries()] == ["e1"]
    assert letters.dropped().ttl == 1 and letters.dropped().cap == 0
