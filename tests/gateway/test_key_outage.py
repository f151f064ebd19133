"""Keys while the key store is out (issue 16): a key found valid recently keeps working for
``gateway.key_outage_seconds``, then no longer; an unknown key is never let in. The outage is
real: the ``api_keys`` table of a real PostgreSQL held under an exclusive lock, read under a
request budget (its 50 ms statement timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tastebud.config import BudgetSettings
from tastebud.gateway.keys import KeyAuthenticator
from tastebud.stores import StoreUnavailable, open_database
from tastebud.stores.budget import within_budget

pytestmark = pytest.mark.postgres


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def keys_locked(url: str) -> Iterator[None]:
    with psycopg.connect(url) as connection:
        connection.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        yield
        connection.rollback()


def test_a_seen_key_outlives_a_key_store_outage_for_a_bounded_time(postgres_url: str) -> None:
    clock = Clock()
    with open_database(postgres_url) as database:
        created = database.gateway.keys.create(["read"], "outage")
        other = database.gateway.keys.create(["read"], "never seen")
        assert created is not None and other is not None
        keys = KeyAuthenticator(
            database.gateway.keys, cache_seconds=5.0, clock=clock, outage_seconds=60.0
        )
        assert keys.authenticate(created[1]) is not None
        with keys_locked(postgres_url), within_budget(BudgetSettings()):
            clock.now += 30.0  # past the 5 s cache: the store is asked, and cannot answer
            assert keys.cached(created[1]) is None
            served = keys.authenticate(created[1])
            assert served is not None and served.key_id == created[0].key_id
            with pytest.raises(StoreUnavailable):
                keys.authenticate(other[1])  # never seen: no way to know it
            clock.now += 31.0  # 61 s since the store last said the key is valid
            with pytest.raises(StoreUnavailable):
                keys.authenticate(created[1])
        # The store answers again: the key is looked up (and trusted) afresh.
        assert keys.authenticate(created[1]) is not None


def test_a_key_revoked_before_the_outage_stays_out(postgres_url: str) -> None:
    clock = Clock()
    with open_database(postgres_url) as database:
        created = database.gateway.keys.create(["read"], "revoked")
        assert created is not None
        keys = KeyAuthenticator(
            database.gateway.keys, cache_seconds=5.0, clock=clock, outage_seconds=60.0
        )
        assert keys.authenticate(created[1]) is not None
        database.gateway.keys.revoke(created[0].key_id)
        clock.now += 6.0
        assert keys.authenticate(created[1]) is None  # the store said so: forgotten
        locked = keys_locked(postgres_url)
        with locked, within_budget(BudgetSettings()), pytest.raises(StoreUnavailable):
            keys.authenticate(created[1])
