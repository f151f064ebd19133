"""Published outputs (``tastebud.stores.published``) on every online backend: what jobs
publish is what serving reads; an older result never replaces a newer one, a placeholder
never blocks a real one; categories that disappear read empty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tastebud.stores import OnlineStore, open_online_store
from tastebud.stores.published import ALL, PublishedOutputs, index_key, list_key

AS_OF = datetime(2024, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'online.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    store = open_online_store(url)
    yield store
    store.close()


def test_published_lists_read_back_per_category(online: OnlineStore) -> None:
    published = PublishedOutputs(online)
    assert published.read("popularity") is None and published.read_index("popularity") is None
    lists = {ALL: [{"item_id": "a"}, {"item_id": "b"}], "rock": [{"item_id": "b"}]}
    assert published.publish("popularity", lists, as_of=AS_OF, version="v1", extra={"n": 2})
    everything = published.read("popularity")
    assert everything is not None and everything["items"] == lists[ALL]
    assert everything["category"] == ALL and everything["version"] == "v1" and everything["n"] == 2
    assert published.read("popularity", ALL) == everything
    rock = published.read("popularity", "rock")
    assert rock is not None and rock["items"] == [{"item_id": "b"}]
    index = published.read_index("popularity")
    assert index is not None and index["categories"] == sorted(lists)
    assert index["as_of"] == AS_OF.isoformat()
    assert list_key("popularity", None) == "popularity:*"
    assert index_key("popularity") == "popularity:index"


def test_an_older_result_never_replaces_a_newer_one(online: OnlineStore) -> None:
    published = PublishedOutputs(online)
    assert published.publish("trending", {ALL: [{"item_id": "new"}]}, as_of=AS_OF, version="2")
    older = AS_OF - timedelta(hours=1)
    assert not published.publish("trending", {ALL: [{"item_id": "old"}]}, as_of=older, version="1")
    document = published.read("trending")
    assert document is not None and document["items"] == [{"item_id": "new"}]


def test_a_placeholder_never_blocks_a_real_result(online: OnlineStore) -> None:
    published = PublishedOutputs(online)
    later = AS_OF + timedelta(days=1)
    assert published.publish(
        "trending", {ALL: []}, as_of=later, version="0", extra={"refused": "x"}
    )
    assert published.publish("trending", {ALL: [{"item_id": "a"}]}, as_of=AS_OF, version="1")
    document = published.read("trending")
    assert document is not None and document["items"] == [{"item_id": "a"}]


def test_a_vanished_category_reads_empty_and_a_stopped_write_writes_nothing(
    online: OnlineStore,
) -> None:
    published = PublishedOutputs(online)
    published.publish(
        "popularity",
        {ALL: [{"item_id": "a"}], "jazz": [{"item_id": "a"}]},
        as_of=AS_OF,
        version="1",
    )
    later = AS_OF + timedelta(hours=1)
    published.publish("popularity", {ALL: [{"item_id": "b"}]}, as_of=later, version="2")
    jazz = published.read("popularity", "jazz")
    assert jazz is not None and jazz["items"] == [] and jazz["version"] == "2"

    def abandoned() -> None:
        raise TimeoutError("attempt abandoned")

    with pytest.raises(TimeoutError):
        published.publish(
            "popularity",
            {ALL: []},
            as_of=later + timedelta(hours=1),
            version="3",
            before_write=abandoned,
        )
    document = published.read("popularity")
    assert document is not None and document["version"] == "2"
