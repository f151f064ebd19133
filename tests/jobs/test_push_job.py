"""The push job end to end: messages encrypted by pywebpush reach a local push service that
decrypts them with each subscription's own keys (http_ece); the frequency cap, quiet hours,
opt-out (also in the middle of a run), and 404/410 pruning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import job_fixtures
import pytest
from push_service import PushService, push_service

from tastebud.config import Settings
from tastebud.jobs import JobRunner, RetryPolicy, RunHistory
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.outputs import publish_lists
from tastebud.push.vapid import ensure_keys
from tastebud.schemas import Item
from tastebud.stores import Stores

history, settings, stores = job_fixtures.history, job_fixtures.settings, job_fixtures.stores
backend_settings = job_fixtures.backend_settings

END = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # noon UTC: nobody's quiet hours in UTC
HOUR = timedelta(hours=1)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PushService]:
    with push_service(tmp_path) as running:
        # pywebpush posts with requests, which trusts the test service's certificate so.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.cert))
        yield running


def seed(stores: Stores) -> str:
    """New and old items, two users' tastes, a trending list and the VAPID keys."""
    stores.catalog.upsert_items(
        [
            Item(
                item_id="new-jazz",
                title="Blue Hour",
                creator="Ana Reis",
                categories=["jazz"],
                created_at=END - 2 * HOUR,
            ),
            Item(item_id="new-rock", title="Amp", categories=["rock"], created_at=END - 3 * HOUR),
            Item(item_id="future", categories=["jazz"], created_at=END + HOUR),
            Item(item_id="old-jazz", title="Old", categories=["jazz"], created_at=END - 900 * HOUR),
            Item(item_id="hit", title="Hit", categories=["pop"], created_at=END - 900 * HOUR),
        ]
    )
    for user, shares in (("u1", {"jazz": 0.8, "pop": 0.2}), ("u2", {"rock": 0.9, "pop": 0.1})):
        document = {
            "categories": [{"category": c, "score": s, "share": s} for c, s in shares.items()]
        }
        stores.online.set(f"affinity:{user}", json.dumps(document).encode())
    entries = [{"item_id": "hit", "score": 9.0, "lift": 3.0, "rank": 1}]
    publish_lists(
        None, stores.online, "trending", {"*": entries, "pop": entries}, as_of=END, version="t"
    )
    keys, _ = ensure_keys(stores.database.push)
    return keys.public_key


def runner(settings: Settings, history: RunHistory, stores: Stores) -> JobRunner:
    registry = build_registry(RetryPolicy(max_attempts=1))
    return JobRunner(settings, registry, history, stores=stores, clock=lambda: END + 100 * HOUR)


def run(job: JobRunner, end: datetime) -> dict[str, object]:
    outcome = job.run("push", end - timedelta(minutes=15), end)
    assert outcome.status == "succeeded", outcome.error
    return outcome.output


def test_messages_are_encrypted_for_each_subscription_and_decrypted_by_the_push_service(
    backend_settings: Settings, service: PushService, tmp_path: Path
) -> None:
    from tastebud.jobs import open_run_history
    from tastebud.stores import open_stores

    with open_stores(backend_settings) as opened, open_run_history(backend_settings) as runs:
        public_key = seed(opened)
        push = opened.database.push
        push.subscribe(service.device("phone", "u1"))
        push.subscribe(service.device("laptop", "u1", timezone="Europe/Paris"))
        push.subscribe(service.device("other", "u2"))
        output = run(runner(backend_settings, runs, opened), END)
        assert service.failures == []
        phone, laptop, other = (service.messages(t) for t in ("phone", "laptop", "other"))
        assert len(phone) == len(laptop) == len(other) == 1
        assert phone == laptop  # one message per user, to every device
        assert phone[0]["kind"] == "new" and phone[0]["item_id"] == "new-jazz"
        assert phone[0]["title"] == "New for you: Blue Hour"
        assert phone[0]["body"] == "Just added by Ana Reis in jazz."
        assert phone[0]["url"] == f"/app/?item=new-jazz&push={phone[0]['push_id']}"
        assert other[0]["item_id"] == "new-rock"  # u2's taste
        assert {r.vapid_key for r in service.received} == {public_key}
        assert all(
            r.headers["ttl"] == str(backend_settings.push.ttl_seconds) for r in service.received
        )
        assert output["notified"] == 2 and output["devices_sent"] == 3
        sent = push.sent_since("u1", 0)
        assert [(s.item_id, s.kind, s.push_id) for s in sent] == [
            ("new-jazz", "new", phone[0]["push_id"])
        ]


def test_frequency_cap_and_no_item_twice(
    settings: Settings, history: RunHistory, stores: Stores, service: PushService
) -> None:
    seed(stores)
    stores.database.push.subscribe(service.device("phone", "u1"))
    job = runner(settings, history, stores)
    assert run(job, END)["notified"] == 1
    assert run(job, END + HOUR)["capped"] == 1  # under min_gap_hours (4) since the last
    assert run(job, END + 5 * HOUR)["notified"] == 1
    assert run(job, END + 10 * HOUR)["capped"] == 1  # max_per_day (2) in 24 h
    assert run(job, END + 30 * HOUR)["notified"] == 1  # a day on: the cap has room again
    items = [message["item_id"] for message in service.messages("phone")]
    # The new jazz items (one released after the first run), then what is trending in the
    # user's categories; never the same item twice.
    assert items == ["new-jazz", "future", "hit"]
    assert [m["kind"] for m in service.messages("phone")] == ["new", "new", "trending"]
    assert service.messages("phone")[2]["title"] == "Trending now: Hit"
    last = run(job, END + 72 * HOUR)
    assert last["nothing_to_say"] == 1, last


def test_quiet_hours_follow_each_devices_time_zone(
    settings: Settings, history: RunHistory, stores: Stores, service: PushService
) -> None:
    seed(stores)
    push = stores.database.push
    push.subscribe(service.device("tokyo", "u1", timezone="Asia/Tokyo"))  # 23:00 there
    push.subscribe(service.device("lisbon", "u1", timezone="Europe/Lisbon"))  # 14:00
    push.subscribe(service.device("sleeper", "u2", timezone="Asia/Tokyo"))
    output = run(runner(settings, history, stores), END + 2 * HOUR)
    assert len(service.messages("lisbon")) == 1
    assert service.messages("tokyo") == [] and service.messages("sleeper") == []
    assert output["quiet"] == 1 and output["notified"] == 1


def test_opt_out_is_honoured_at_once_even_during_a_run(
    settings: Settings, history: RunHistory, stores: Stores, service: PushService
) -> None:
    seed(stores)
    push = stores.database.push
    push.subscribe(service.device("a", "u1"))
    push.subscribe(service.device("b", "u2"))
    push.subscribe(service.device("c", "u3"))
    push.unsubscribe("u3")  # before the run
    # u2 opts out while the job is sending to u1 (users go in order).
    service.on_message = lambda received: push.unsubscribe("u2", service.endpoint("b"))
    output = run(runner(settings, history, stores), END)
    assert len(service.messages("a")) == 1
    assert service.messages("b") == [] and service.messages("c") == []
    assert output["notified"] == 1
    assert push.subscribed_users() == ["u1"]


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_pruned(
    settings: Settings, history: RunHistory, stores: Stores, service: PushService, status: int
) -> None:
    seed(stores)
    push = stores.database.push
    push.subscribe(service.device("gone", "u1"))
    push.subscribe(service.device("alive", "u1"))
    service.status["gone"] = status
    output = run(runner(settings, history, stores), END)
    assert [s.endpoint.rsplit("/", 1)[-1] for s in push.subscriptions("u1")] == ["alive"]
    assert output["devices_expired"] == 1 and output["devices_sent"] == 1


def test_a_failing_push_service_is_retried_next_run_and_not_counted(
    settings: Settings, history: RunHistory, stores: Stores, service: PushService
) -> None:
    seed(stores)
    push = stores.database.push
    push.subscribe(service.device("flaky", "u1"))
    service.status["flaky"] = 503
    job = runner(settings, history, stores)
    output = run(job, END)
    assert output["undelivered"] == 1 and output["devices_retry"] == 1
    assert push.sent_since("u1", 0) == [] and push.count() == 1
    del service.status["flaky"]
    assert run(job, END + 0.25 * HOUR)["notified"] == 1
    assert [m["item_id"] for m in service.messages("flaky")] == ["new-jazz"]


def test_without_vapid_keys_the_job_says_what_to_do(
    settings: Settings, history: RunHistory, stores: Stores
) -> None:
    output = run(runner(settings, history, stores), END)
    assert output == {"skipped": "no VAPID keys yet: run `tastebud push keys`"}
