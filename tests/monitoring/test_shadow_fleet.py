"""The shadow's fleet view: each worker publishes its comparisons to the shared online store
(SQLite for one machine's workers, Redis for every node), and any worker merges every live
one's; a stopped worker's expire."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from stores import test_online_store_contract as online_contract

from tastebud.monitoring.shadow import ShadowSummary, compare, fleet, publish, worker_id
from tastebud.stores import OnlineStore, open_online_store

# SQLite and Redis: the online stores processes share (the contract suite's fixture).
shared_online_url = online_contract.shared_online_url


@pytest.fixture
def workers(shared_online_url: str) -> Iterator[tuple[OnlineStore, OnlineStore]]:
    """Two workers' own connections to one online store (SQLite or Redis)."""
    first, second = open_online_store(shared_online_url), open_online_store(shared_online_url)
    yield first, second
    first.close()
    second.close()


def summary(overlaps: list[float], version: str = "v2") -> ShadowSummary:
    held = ShadowSummary()
    for overlap in overlaps:
        hits = round(overlap * 4)
        production = [(f"i{n}", 1.0 - n / 10) for n in range(4)]
        shadow = [(f"i{n}", 1.0 - n / 10) for n in range(hits)] + [
            (f"x{n}", 0.1) for n in range(4 - hits)
        ]
        held.record(
            compare(
                production,
                shadow,
                shadow_version=version,
                production_version="v1",
                production_ms=2.0,
                shadow_ms=3.0,
            )
        )
    held.count("dropped")
    return held


def test_two_workers_are_merged_and_a_stopped_one_expires(
    workers: tuple[OnlineStore, OnlineStore],
) -> None:
    one, two = workers
    assert fleet(one) == {"workers": 0, "counts": {}, "versions": {}}  # nobody published
    first, second = summary([1.0, 1.0, 0.5]), summary([0.25] * 5)
    first_id, second_id = worker_id(), worker_id()
    assert first_id != second_id
    publish(one, first_id, first)
    publish(one, first_id, first)  # each poll publishes again: listed once
    publish(two, second_id, second, ttl=0.5)
    merged = fleet(two)
    assert merged["workers"] == 2
    assert merged["counts"] == {"compared": 8, "dropped": 2, "skipped": 0, "failed": 0}
    figures = merged["versions"]["v2"]
    assert figures["comparisons"] == 8
    assert figures["overlap_mean"] == pytest.approx((1.0 + 1.0 + 0.5 + 5 * 0.25) / 8, abs=1e-4)
    assert figures["latency_difference_ms_median"] == pytest.approx(1.0)
    assert fleet(one) == merged  # any worker sees the same
    time.sleep(0.8)  # the second worker stopped publishing: its comparisons expire
    alone = fleet(one)
    assert alone["workers"] == 1 and alone["versions"]["v2"]["comparisons"] == 3
