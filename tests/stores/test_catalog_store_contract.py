"""The CatalogStore contract, run against every backend (embedded, PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tastebud.schemas import Item, User
from tastebud.stores import CatalogStore, open_database


@pytest.fixture(params=["embedded", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CatalogStore]:
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with open_database(url) as database:
        yield database.catalog


def item(index: int, **changes: object) -> Item:
    fields: dict[str, object] = {
        "item_id": f"i{index:03d}",
        "title": f"Title {index} ünïcode ♫",
        "creator": f"creator{index % 3}",
        "categories": ["rock", "indie"] if index % 2 else ["jazz"],
        "created_at": datetime(2024, 1, 1 + index % 28, 12, 30, tzinfo=UTC),
        "attributes": {"tempo": 120.5 + index, "tags": ["a", "b"], "price": None},
        "active": index % 5 != 0,
    }
    fields.update(changes)
    return Item(**fields)  # type: ignore[arg-type]


def test_items_round_trip(catalog: CatalogStore) -> None:
    items = [item(i) for i in range(10)]
    assert catalog.upsert_items(items) == 10
    found = catalog.get_items(["i003", "i007", "missing"])
    assert set(found) == {"i003", "i007"}
    assert found["i003"].model_dump() == items[3].model_dump()
    assert catalog.get_item("missing") is None
    assert catalog.count_items() == 10
    assert catalog.count_items(active=True) == 8


def test_upsert_replaces_only_the_given_rows(catalog: CatalogStore) -> None:
    catalog.upsert_items([item(i) for i in range(5)])
    catalog.upsert_items([item(2, title="Renamed", categories=["pop"], active=False)])
    assert catalog.get_item("i002").title == "Renamed"  # type: ignore[union-attr]
    assert catalog.get_item("i002").categories == ["pop"]  # type: ignore[union-attr]
    assert catalog.get_item("i003").model_dump() == item(3).model_dump()  # type: ignore[union-attr]
    assert catalog.count_items() == 5


def test_list_items_pages_and_filters(catalog: CatalogStore) -> None:
    catalog.upsert_items([item(i) for i in range(25)])
    first = catalog.list_items(limit=10)
    second = catalog.list_items(after=first[-1].item_id, limit=10)
    assert [i.item_id for i in first] == [f"i{n:03d}" for n in range(10)]
    assert [i.item_id for i in second] == [f"i{n:03d}" for n in range(10, 20)]
    rock = catalog.list_items(category="rock", limit=100)
    assert {i.item_id for i in rock} == {f"i{n:03d}" for n in range(25) if n % 2}
    inactive = catalog.list_items(active=False, limit=100)
    assert {i.item_id for i in inactive} == {f"i{n:03d}" for n in range(25) if n % 5 == 0}
    assert [i.item_id for i in catalog.iter_items(page=7)] == [f"i{n:03d}" for n in range(25)]


def test_users_round_trip_and_upsert(catalog: CatalogStore) -> None:
    users = [
        User(user_id=f"u{n}", created_at=datetime(2024, 2, 1, tzinfo=UTC), attributes={"age": n})
        for n in range(12)
    ]
    catalog.upsert_users(users)
    catalog.upsert_users([User(user_id="u3", attributes={"age": 99})])
    assert catalog.count_users() == 12
    assert catalog.get_user("u3").attributes == {"age": 99}  # type: ignore[union-attr]
    assert catalog.get_user("u3").created_at is None  # type: ignore[union-attr]
    assert catalog.get_user("u4").model_dump() == users[4].model_dump()  # type: ignore[union-attr]
    assert len(list(catalog.iter_users(page=5))) == 12
    assert [u.user_id for u in catalog.list_users(after="u5", limit=3)] == ["u6", "u7", "u8"]


def test_empty_catalog(catalog: CatalogStore) -> None:
    assert catalog.count_items() == 0 and catalog.count_users() == 0
    assert catalog.list_items() == [] and catalog.get_items([]) == {}
    assert catalog.upsert_items([]) == 0


def test_items_changed_since_reads_only_recent_rows(catalog: CatalogStore) -> None:
    # The test cannot stamp rows in the past, so it waits out a short overlap; one second keeps
    # "still inside the overlap" true on a loaded machine (0.05 s was not, under CI load).
    catalog.change_overlap_seconds = 1.0
    catalog.upsert_items([item(i) for i in range(10)])
    time.sleep(1.2)  # these rows now lie before any later watermark's overlap
    everything, watermark = catalog.items_changed_since(None, page=3)
    assert [i.item_id for i in everything] == [f"i{n:03d}" for n in range(10)]
    assert everything[4].model_dump() == item(4).model_dump()
    catalog.upsert_items([item(3, title="Renamed", active=False), item(42)])
    changed, later = catalog.items_changed_since(watermark, page=1)
    assert [i.item_id for i in changed] == ["i003", "i042"]
    assert changed[0].model_dump() == item(3, title="Renamed", active=False).model_dump()
    assert later >= watermark
    again, _ = catalog.items_changed_since(later)  # still inside the overlap: read again
    assert [i.item_id for i in again] == ["i003", "i042"]
    time.sleep(1.2)
    _, quiet = catalog.items_changed_since(later)
    assert catalog.items_changed_since(quiet)[0] == []


def test_items_changed_since_on_an_empty_catalog(catalog: CatalogStore) -> None:
    items, watermark = catalog.items_changed_since(None)
    assert items == []
    assert abs(watermark - time.time()) < 60  # the store's clock when it read
    assert catalog.items_changed_since(watermark)[0] == []


# Ordered by code point, these differ from a linguistic collation's order (en_US: "aB" <
# "ab" < "a-c" < "B" < "b"), which would scatter the ids that start with "a" among others.
MIXED_IDS = ["b", "B", "a-c", "ab", "aB", "abc", "Z", "a", "a.b", "a_c", "a~"]


def test_ids_page_in_code_point_order(catalog: CatalogStore) -> None:
    """Pages "after" an id, and so a prefix search reading them (the dashboard's user
    picker), need one order on every backend: the ids' code points."""
    catalog.upsert_users([User(user_id=user_id) for user_id in MIXED_IDS])
    catalog.upsert_items([item(0, item_id=item_id) for item_id in MIXED_IDS])
    assert [u.user_id for u in catalog.list_users(limit=100)] == sorted(MIXED_IDS)
    assert [i.item_id for i in catalog.list_items(limit=100)] == sorted(MIXED_IDS)
    after_a = [u.user_id for u in catalog.list_users(after="a", limit=4)]
    assert after_a == ["a-c", "a.b", "aB", "a_c"]  # every id starting with "a" sorts after it
    assert [i.item_id for i in catalog.list_items(after="a", limit=4)] == after_a
