"""The feature online store's contract over every key-value backend (memory, SQLite, Redis),
plus the LRU in front of shared backends and cross-process invalidation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feature_fixtures
import pyarrow as pa
import pytest

from tastebud.features.online import _ABSENT, FeatureOnlineStore, LruCache
from tastebud.features.views import FeatureView
from tastebud.stores import OnlineStore, StoreUnavailable, open_online_store

TS = pa.timestamp("us", tz="UTC")
test_registry, user_view = feature_fixtures.test_registry, feature_fixtures.user_view


@pytest.fixture(params=["memory", "sqlite", "redis"])
def kv_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'online.db'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def kv(kv_url: str) -> Iterator[OnlineStore]:
    store = open_online_store(kv_url)
    yield store
    store.close()


def rows(view: FeatureView, values: dict[str, int], at: datetime) -> pa.Table:
    ids = sorted(values)
    return pa.table(
        {
            "entity_id": ids,
            "event_timestamp": pa.array([at] * len(ids), TS),
            "clicks": pa.array([values[i] for i in ids], pa.int64()),
            "score": pa.array([values[i] + 0.5 for i in ids]),
            "seen_at": pa.array([at] * len(ids), TS),
            "tags": pa.array([[i] for i in ids], pa.list_(pa.string())),
            "vector": pa.array([[1.5, 2.0] for _ in ids], pa.list_(pa.float32())),
        },
        schema=view.arrow_schema(),
    )


def test_write_then_batch_read(kv: OnlineStore, user_view: FeatureView) -> None:
    store = FeatureOnlineStore(kv)
    now = datetime.now(UTC)
    assert store.write(user_view, rows(user_view, {"u1": 1, "u2": 2}, now)) == 2
    entries = store.read(user_view, ["u2", "ghost", "u1"])
    assert entries[1] is None
    assert entries[0] is not None and entries[0]["v"]["clicks"] == 2
    assert entries[2] is not None and entries[2]["v"] == {
        "clicks": 1,
        "score": 1.5,
        "seen_at": now.isoformat(),
        "tags": ["u1"],
        "vector": [1.5, 2.0],
    }
    assert store.read(user_view, []) == []


def test_values_expire_with_the_view_ttl(kv: OnlineStore, user_view: FeatureView) -> None:
    store = FeatureOnlineStore(kv, cache_entries=0)
    now = datetime.now(UTC)
    ttl = user_view.ttl_seconds
    old = now - timedelta(seconds=ttl - 1)  # expires in about a second
    stale = now - timedelta(seconds=ttl + 5)  # already past its TTL: not written
    store.write(user_view, rows(user_view, {"u1": 1}, old))
    assert store.write(user_view, rows(user_view, {"u2": 2}, stale)) == 0
    assert store.read(user_view, ["u1"])[0] is not None
    time.sleep(1.6)
    assert store.read(user_view, ["u1", "u2"]) == [None, None]


def test_invalidation_reaches_another_process_cache(kv_url: str, user_view: FeatureView) -> None:
    if kv_url == "memory://":
        pytest.skip("memory:// is one process and has no cache")
    writer_kv, reader_kv = open_online_store(kv_url), open_online_store(kv_url)
    try:
        writer = FeatureOnlineStore(writer_kv)
        reader = FeatureOnlineStore(reader_kv, generation_check_seconds=0.2)
        now = datetime.now(UTC)
        writer.write(user_view, rows(user_view, {"u1": 1}, now))
        writer.invalidate(user_view)
        assert reader.read(user_view, ["u1"])[0]["v"]["clicks"] == 1  # type: ignore[index]
        assert reader.read(user_view, ["u1"])[0]["v"]["clicks"] == 1  # type: ignore[index]
        assert reader.hits == 1 and reader.misses == 1
        writer.write(user_view, rows(user_view, {"u1": 9}, now))
        writer.invalidate(user_view)
        time.sleep(0.3)
        assert reader.read(user_view, ["u1"])[0]["v"]["clicks"] == 9  # type: ignore[index]
    finally:
        writer_kv.close()
        reader_kv.close()


def test_cache_hit_ratio_on_redis(redis_url: str, user_view: FeatureView) -> None:
    store = FeatureOnlineStore(open_online_store(redis_url))
    store.write(user_view, rows(user_view, {f"u{n}": n for n in range(10)}, datetime.now(UTC)))
    for _ in range(9):
        store.read(user_view, [f"u{n}" for n in range(10)])
    assert store.hit_ratio == pytest.approx(80 / 90)  # the first read of each key misses
    assert store.read(user_view, ["u3"], use_cache=False)[0]["v"]["clicks"] == 3  # type: ignore[index]
    store.close()


def test_redis_down_raises_store_unavailable(user_view: FeatureView) -> None:
    store = FeatureOnlineStore(open_online_store("redis://127.0.0.1:1/0"))
    with pytest.raises(StoreUnavailable):
        store.read(user_view, ["u1"])
    store.close()


def test_lru_evicts_oldest_and_expires() -> None:
    cache = LruCache(2, ttl_seconds=0.2)
    cache.put("a", 1)
    cache.put("b", None)
    assert cache.get("b") is None  # None is a cacheable value ("not in the store")
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") is _ABSENT and len(cache) == 2  # b was the least recently used
    assert cache.get("a") == 1
    time.sleep(0.25)
    assert cache.get("a") is _ABSENT  # expired
