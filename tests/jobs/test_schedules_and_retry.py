"""Schedules turn "now" into complete, repeatable intervals; retries back off with jitter
and a cap, and only transient errors count as transient."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tastebud.jobs import RetryPolicy, TransientJobError
from tastebud.jobs.schedules import Cron, Every, OnDemand, parse_schedule
from tastebud.stores import StoreError, StoreUnavailable
from tastebud.stores.errors import is_transient

T = datetime(2025, 1, 1, 10, 7, 30, tzinfo=UTC)


def test_cron_intervals_are_complete_and_repeatable() -> None:
    every_five = Cron("*/5 * * * *")
    assert every_five.previous(T) == datetime(2025, 1, 1, 10, 5, tzinfo=UTC)
    assert every_five.next(T) == datetime(2025, 1, 1, 10, 10, tzinfo=UTC)
    tick = datetime(2025, 1, 1, 10, 5, tzinfo=UTC)
    assert every_five.previous(tick) == tick  # a tick is its own latest tick
    assert every_five.latest_interval(T) == (tick - timedelta(minutes=5), tick)
    assert every_five.latest_interval(T) == every_five.latest_interval(T + timedelta(minutes=2))
    daily = Cron("30 2 * * *")
    assert daily.latest_interval(T) == (
        datetime(2024, 12, 31, 2, 30, tzinfo=UTC),
        datetime(2025, 1, 1, 2, 30, tzinfo=UTC),
    )


def test_every_is_aligned_to_the_epoch() -> None:
    hourly = Every(timedelta(hours=1))
    assert hourly.previous(T) == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert hourly.next(T) == datetime(2025, 1, 1, 11, tzinfo=UTC)
    assert hourly.interval_ending(datetime(2025, 1, 1, 10, tzinfo=UTC))[0] == datetime(
        2025, 1, 1, 9, tzinfo=UTC
    )
    assert hourly.describe() == "every 1h"


def test_ticks_between_keeps_the_newest() -> None:
    hourly = Every(timedelta(hours=1))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ticks = hourly.ticks_between(start, start + timedelta(hours=5, minutes=3), limit=2)
    assert ticks == [start + timedelta(hours=4), start + timedelta(hours=5)]
    assert hourly.ticks_between(start, start + timedelta(minutes=59), limit=5) == []


def test_parse_schedule() -> None:
    assert parse_schedule("5m") == Every(timedelta(minutes=5))
    assert parse_schedule("1d") == Every(timedelta(days=1))
    assert parse_schedule("0 * * * *") == Cron("0 * * * *")
    assert isinstance(parse_schedule("manual"), OnDemand)
    with pytest.raises(ValueError, match="invalid cron"):
        parse_schedule("every tuesday")
    with pytest.raises(ValueError, match="explicit interval"):
        OnDemand().latest_interval(T)
    with pytest.raises(ValueError, match="positive"):
        Every(timedelta(0))


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=5.0, jitter=0.5)
    rng = random.Random(0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.3  # jittered, not constant
    assert RetryPolicy(jitter=0.0).delay(2) == 4.0
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_only_transient_errors_are_transient() -> None:
    assert is_transient(StoreUnavailable("down"))
    assert is_transient(TransientJobError("try later"))
    assert is_transient(ConnectionResetError())
    assert is_transient(TimeoutError())
    assert not is_transient(StoreError("corrupt"))
    assert not is_transient(ValueError("bug"))
    assert not is_transient(KeyError("x"))
