"""Token-bucket rate limits and the DLQ-share alert, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from tastebud.gateway.dlq import DlqShareMonitor
from tastebud.gateway.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert all(limiter.check("k", rate=2.0, burst=3.0) == 0 for _ in range(3))
    wait = limiter.check("k", rate=2.0, burst=3.0)
    assert wait == pytest.approx(0.5)
    assert limiter.check("other", rate=2.0, burst=3.0) == 0  # buckets are per key
    clock.now += 0.5
    assert limiter.check("k", rate=2.0, burst=3.0) == 0
    assert limiter.check("k", rate=2.0, burst=3.0) > 0
    clock.now += 100  # refills up to the burst, not beyond
    assert sum(limiter.check("k", rate=2.0, burst=3.0) == 0 for _ in range(5)) == 3


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"


def test_alert_fires_once_per_window_when_the_share_passes_the_threshold() -> None:
    clock = Clock()
    posted: list[tuple[str, dict[str, Any]]] = []
    monitor = DlqShareMonitor(
        window=60,
        threshold=0.1,
        min_events=100,
        webhook_url="http://hooks.invalid/x",
        clock=clock,
        post=lambda url, alert: posted.append((url, alert)),
    )
    assert monitor.record(50, 25) is None  # too few events to judge
    clock.now += 1
    alert = monitor.record(100, 0)  # 25 of 150 in the window: 16.7%
    assert alert is not None and alert["dead_lettered"] == 25
    clock.now += 1
    assert monitor.record(100, 100) is None  # already alerted in this window
    assert len(posted) <= 1


def test_alert_content_and_webhook() -> None:
    clock = Clock()
    posted: list[tuple[str, dict[str, Any]]] = []
    monitor = DlqShareMonitor(
        60, 0.1, 100, "http://hooks.invalid/x", clock=clock, post=lambda u, a: posted.append((u, a))
    )
    alert = monitor.record(200, 30)
    assert alert is not None
    assert alert["share"] == pytest.approx(0.15) and alert["events"] == 200
    import time

    for _ in range(100):  # the webhook is posted from a thread
        if posted:
            break
        time.sleep(0.01)
    assert posted == [("http://hooks.invalid/x", alert)]
    clock.now += 61  # the window has passed: the old events no longer count
    assert monitor.record(200, 10) is None
    clock.now += 1
    assert monitor.record(100, 50) is not None  # 60 of 300 in the window: 20%


def test_no_alert_below_the_threshold() -> None:
    clock = Clock()
    monitor = DlqShareMonitor(60, 0.1, 10, None, clock=clock)
    for _ in range(50):
        clock.now += 1
        assert monitor.record(100, 5) is None
