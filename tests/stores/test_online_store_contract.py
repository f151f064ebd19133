"""The OnlineStore contract, run against every backend (memory, embedded SQLite, Redis)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tastebud.stores import OnlineStore, open_online_store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def online_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'online.db'}"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def online(online_url: str) -> Iterator[OnlineStore]:
    store = open_online_store(online_url)
    yield store
    store.close()


def test_set_and_get_many(online: OnlineStore) -> None:
    online.set_many({"a": b"1", "b": b"\x00\xff", "c": b""})
    assert online.get_many(["a", "missing", "b", "c"]) == [b"1", None, b"\x00\xff", b""]
    assert online.get("a") == b"1"
    assert online.get_many([]) == []


def test_overwrite(online: OnlineStore) -> None:
    online.set("k", b"old")
    online.set("k", b"new")
    assert online.get("k") == b"new"


def test_delete_counts_existing_keys(online: OnlineStore) -> None:
    online.set_many({"a": b"1", "b": b"2"})
    assert online.delete_many(["a", "zzz"]) == 1
    assert online.get_many(["a", "b"]) == [None, b"2"]
    assert online.delete_many([]) == 0


def test_ttl_expires(online: OnlineStore) -> None:
    online.set_many({"short": b"x"}, ttl_seconds=0.2)
    online.set_many({"long": b"y"}, ttl_seconds=60)
    online.set("forever", b"z")
    assert online.get("short") == b"x"
    time.sleep(0.4)
    assert online.get_many(["short", "long", "forever"]) == [None, b"y", b"z"]
    assert online.delete_many(["short"]) == 0


def test_invalid_ttl_is_rejected(online: OnlineStore) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        online.set("k", b"v", ttl_seconds=0)


def test_many_keys_in_one_call(online: OnlineStore) -> None:
    values = {f"user:{n}": str(n).encode() for n in range(2_500)}
    online.set_many(values, ttl_seconds=60)
    keys = list(values)
    assert online.get_many(keys) == list(values.values())


@pytest.fixture(params=["sqlite", "redis"])
def shared_online_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The backends meant to be shared by processes (memory:// is private by design)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'online.db'}"
    return request.getfixturevalue("redis_url")


def test_another_process_sees_writes(shared_online_url: str) -> None:
    online_url = shared_online_url
    writer = (
        "from tastebud.stores import open_online_store; import sys\n"
        "s = open_online_store(sys.argv[1]); s.set('shared', b'from-child'); s.close()"
    )
    subprocess.run([sys.executable, "-c", writer, online_url], check=True)
    store = open_online_store(online_url)
    assert store.get("shared") == b"from-child"
    store.close()
