"""The OnlineStore contract, run against every backend (memory, embedded SQLite, Redis)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
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


# Capped lists (push_lists / get_lists).


def test_list_is_oldest_first(online: OnlineStore) -> None:
    online.push_list("recent", [b"a", b"b"], keep=10)
    online.push_list("recent", [b"c"], keep=10)
    assert online.get_list("recent") == [b"a", b"b", b"c"]


def test_list_is_trimmed_to_the_newest(online: OnlineStore) -> None:
    online.push_list("recent", [b"1", b"2", b"3"], keep=3)
    online.push_list("recent", [b"4", b"5"], keep=3)
    assert online.get_list("recent") == [b"3", b"4", b"5"]
    online.push_list("recent", [b"6", b"7", b"8", b"9"], keep=2)
    assert online.get_list("recent") == [b"8", b"9"]


def test_lists_of_several_keys_in_one_call(online: OnlineStore) -> None:
    online.push_lists({"u1": [b"x"], "u2": [b"y", b"\x00\xff"], "u3": []}, keep=5)
    online.push_lists({"u1": [b"z"], "u2": [b""]}, keep=5)
    assert online.get_lists(["u2", "missing", "u1", "u3", "u1"]) == [
        [b"y", b"\x00\xff", b""],
        [],
        [b"x", b"z"],
        [],
        [b"x", b"z"],
    ]
    assert online.get_lists([]) == []


def test_missing_list_is_empty(online: OnlineStore) -> None:
    assert online.get_list("nobody") == []
    online.push_lists({}, keep=3)
    assert online.get_list("nobody") == []


def test_many_lists_in_one_call(online: OnlineStore) -> None:
    items = {f"user:{n}": [str(n).encode(), b"!"] for n in range(1_200)}
    online.push_lists(items, keep=5, ttl_seconds=60)
    assert online.get_lists(list(items)) == list(items.values())


def test_list_ttl_expires_and_is_reset_by_each_push(online: OnlineStore) -> None:
    online.push_list("short", [b"x"], keep=5, ttl_seconds=0.2)
    online.push_list("long", [b"y"], keep=5, ttl_seconds=60)
    online.push_list("forever", [b"z"], keep=5)
    online.push_list("renewed", [b"1"], keep=5, ttl_seconds=0.3)
    assert online.get_list("short") == [b"x"]
    time.sleep(0.2)
    online.push_list("renewed", [b"2"], keep=5, ttl_seconds=0.3)
    time.sleep(0.2)
    assert online.get_lists(["short", "long", "forever", "renewed"]) == [
        [],
        [b"y"],
        [b"z"],
        [b"1", b"2"],
    ]
    assert online.delete_many(["short"]) == 0
    online.push_list("short", [b"again"], keep=5, ttl_seconds=60)
    assert online.get_list("short") == [b"again"]
    time.sleep(0.2)
    assert online.get_list("renewed") == []


def test_delete_many_removes_lists(online: OnlineStore) -> None:
    online.push_list("l1", [b"a", b"b"], keep=5)
    online.push_list("l2", [b"c"], keep=5)
    online.set("plain", b"p")
    assert online.delete_many(["l1", "plain", "nothing"]) == 2
    assert online.get_lists(["l1", "l2"]) == [[], [b"c"]]
    assert online.get("plain") is None
    online.push_list("l1", [b"new"], keep=5)
    assert online.get_list("l1") == [b"new"]


def test_invalid_keep_and_ttl_are_rejected(online: OnlineStore) -> None:
    for keep in (0, -1):
        with pytest.raises(ValueError, match="keep"):
            online.push_list("k", [b"v"], keep=keep)
    for ttl in (0, -1.0):
        with pytest.raises(ValueError, match="ttl_seconds"):
            online.push_list("k", [b"v"], keep=5, ttl_seconds=ttl)
    with pytest.raises(ValueError, match="keep"):
        online.push_lists({}, keep=0)
    assert online.get_list("k") == []


PUSHER = """
import sys
from tastebud.stores import open_online_store

url, worker = sys.argv[1], sys.argv[2]
store = open_online_store(url)
print("ready", flush=True)
sys.stdin.readline()
for n in range(50):
    store.push_list("shared", [f"{worker}:{n}".encode()], keep=1_000, ttl_seconds=60)
store.close()
"""


def test_processes_pushing_at_once_lose_nothing(shared_online_url: str) -> None:
    workers = [str(n) for n in range(4)]
    with ExitStack() as stack:
        children = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", PUSHER, shared_online_url, worker],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for worker in workers
        ]
        for child in children:
            stack.callback(lambda child=child: child.poll() is None and child.kill())
        for child in children:  # every child has imported and connected: start together
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
        for child in children:
            assert child.wait(timeout=60) == 0
    store = open_online_store(shared_online_url)
    values = [value.decode() for value in store.get_list("shared")]
    store.close()
    assert sorted(values) == sorted(f"{worker}:{n}" for worker in workers for n in range(50))
    for worker in workers:  # each worker's own pushes keep their order
        assert [v for v in values if v.startswith(f"{worker}:")] == [
            f"{worker}:{n}" for n in range(50)
        ]
