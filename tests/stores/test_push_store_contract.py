"""The PushStore contract, run against every backend (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tastebud.stores import Database, PushStore, open_database
from tastebud.stores.push import PushSubscription, SentPush, VapidKeys


@pytest.fixture(params=["embedded", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PushStore]:
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database: Database = open_database(url)
    with database:
        yield database.push


def subscription(n: int, user: str = "u1", **changes: object) -> PushSubscription:
    fields: dict[str, object] = {
        "endpoint": f"https://push.example/send/{n}-ünï",
        "user_id": user,
        "p256dh": f"key{n}",
        "auth": f"auth{n}",
        "timezone": "Europe/Paris",
        "expires_at": None,
        "created_at": 1_700_000_000.0 + n,
    }
    fields.update(changes)
    return PushSubscription(**fields)  # type: ignore[arg-type]


def test_subscribe_round_trips_and_replaces_by_endpoint(store: PushStore) -> None:
    assert store.subscribe(subscription(1))
    assert store.subscribe(subscription(2, expires_at=1_800_000_000.5, timezone=None))
    assert store.get(subscription(1).endpoint) == subscription(1)
    assert store.subscriptions("u1") == [
        subscription(1),
        subscription(2, expires_at=1_800_000_000.5, timezone=None),
    ]
    # The same endpoint again (another user signed in on that browser) takes it over.
    assert not store.subscribe(subscription(1, user="u2", p256dh="fresh"))
    assert store.subscriptions("u2") == [subscription(1, user="u2", p256dh="fresh")]
    assert [s.endpoint for s in store.subscriptions("u1")] == [subscription(2).endpoint]
    assert store.count() == 2
    assert store.get("https://push.example/unknown") is None


def test_subscription_change_replaces_the_old_endpoint_in_one_step(store: PushStore) -> None:
    store.subscribe(subscription(1))
    store.subscribe(subscription(9), replaces=subscription(1).endpoint)
    assert [s.endpoint for s in store.subscriptions("u1")] == [subscription(9).endpoint]
    # Replacing an endpoint that is gone already is fine.
    store.subscribe(subscription(10), replaces="https://push.example/never")
    assert store.count() == 2


def test_opt_out_removes_only_the_users_own_subscriptions(store: PushStore) -> None:
    store.subscribe(subscription(1))
    store.subscribe(subscription(2))
    store.subscribe(subscription(3, user="u2"))
    assert store.unsubscribe("u2", subscription(1).endpoint) == 0  # not u2's
    assert store.unsubscribe("u1", subscription(1).endpoint) == 1
    assert store.unsubscribe("u1", subscription(1).endpoint) == 0
    assert store.get(subscription(1).endpoint) is None
    assert store.unsubscribe("u1") == 1  # every remaining one of u1's
    assert store.subscriptions("u1") == []
    assert store.count() == 1


def test_remove_prunes_expired_endpoints_of_anyone(store: PushStore) -> None:
    for n, user in enumerate(["a", "b", "c"]):
        store.subscribe(subscription(n, user=user))
    removed = store.remove([subscription(0).endpoint, subscription(2).endpoint, "https://x/y"])
    assert removed == 2
    assert store.remove([]) == 0
    assert store.subscribed_users() == ["b"]


def test_subscribed_users_are_paged_in_order(store: PushStore) -> None:
    for n in range(7):
        store.subscribe(subscription(n, user=f"user{n % 5}"))
    assert store.subscribed_users(limit=3) == ["user0", "user1", "user2"]
    assert store.subscribed_users(after="user2", limit=3) == ["user3", "user4"]
    assert store.subscribed_users(after="user4") == []


def test_sent_log_counts_per_user_and_prunes(store: PushStore) -> None:
    now = time.time()
    sent = [
        SentPush("u1", "i1", "new", "p1", now - 90_000),
        SentPush("u1", "i2", "trending", "p2", now - 600),
        SentPush("u1", "i3", "new", "p3", now - 60),
        SentPush("u2", "i1", "new", "p4", now - 60),
    ]
    store.record_sent(sent)
    store.record_sent([])
    assert store.sent_since("u1", now - 86_400) == sent[1:3]
    assert store.sent_since("u1", 0) == sent[:3]
    assert store.sent_since("nobody", 0) == []
    assert store.prune_sent(now - 86_400) == 1
    assert store.sent_since("u1", 0) == sent[1:3]


def test_vapid_keys_are_kept_until_replaced_and_replacing_drops_subscriptions(
    store: PushStore,
) -> None:
    assert store.vapid_keys() is None
    first = VapidKeys("-----BEGIN PRIVATE KEY-----\nA\n", "BPub1", 1_700_000_000.0)
    assert store.save_vapid_keys(first)
    assert not store.save_vapid_keys(VapidKeys("other", "BPub2"))
    assert store.vapid_keys() == first
    store.subscribe(subscription(1))
    second = VapidKeys("-----BEGIN PRIVATE KEY-----\nB\n", "BPub2", 1_700_000_100.0)
    assert store.save_vapid_keys(second, replace=True)
    assert store.vapid_keys() == second
    assert store.count() == 0


def test_keys_are_created_once_under_concurrency(store: PushStore) -> None:
    def attempt(n: int) -> bool:
        return store.save_vapid_keys(VapidKeys(f"pem{n}", f"pub{n}"))

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count(True) == 1
    keys = store.vapid_keys()
    assert keys is not None and keys.public_key == f"pub{outcomes.index(True)}"
