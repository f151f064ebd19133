"""Loaders and ingest on small files written by the tests: every layout, every kind of bad row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastebud.config import Settings, load_settings
from tastebud.data.bulk_load import IngestReport, ingest_sources
from tastebud.data.loaders import open_sources
from tastebud.data.loaders.columns import MappingError, parse_mapping
from tastebud.stores import Stores, open_stores


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    with open_stores(settings) as opened:
        yield opened


def run(path: Path, stores: Stores, settings: Settings, **options: object) -> IngestReport:
    return ingest_sources(open_sources(path, **options), stores, settings)  # type: ignore[arg-type]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_kept(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    big_context = json.dumps({"blob": "x" * 5000}).replace('"', '""')
    path = write(
        tmp_path / "events.csv",
        "user_id,item_id,event_type,timestamp,value,context\n"
        "u1,i1,play,2024-05-01T10:00:00Z,30,\n"  # line 2: good
        "u2,i2,play,2024-05-01T10:00:00Z\n"  # line 3: too few fields
        "u3,i3,teleport,2024-05-01T10:00:00Z,,\n"  # line 4: unknown type
        ",i4,play,2024-05-01T10:00:00Z,,\n"  # line 5: missing user
        "u5,i5,play,1970-01-02T00:00:00Z,,\n"  # line 6: far past
        "u6,i6,play,2999-01-01T00:00:00Z,,\n"  # line 7: far future
        f'u7,i7,play,2024-05-01T10:00:00Z,,"{big_context}"\n'  # line 8: oversized context
        "u8,i8,rating,1714557600,4.5,\n"  # line 9: good
        "u9,i9,like,not-a-time,,\n",  # line 10: bad timestamp
    )
    report = run(path, stores, settings)
    (source,) = report.sources
    assert (source.rows_read, source.stored, source.rejected) == (9, 2, 7)
    assert [(r.row, r.reason) for r in source.rejections] == [
        (3, "malformed_row"),
        (4, "unknown_event_type"),
        (5, "missing_field"),
        (6, "timestamp_too_old"),
        (7, "timestamp_in_future"),
        (8, "context_too_large"),
        (10, "timestamp_invalid"),
    ]
    assert {e.user_id for e in stores.events.scan()} == {"u1", "u8"}
    # Running it again stores nothing twice.
    again = run(path, stores, settings).sources[0]
    assert (again.stored, again.duplicates, again.rejected) == (0, 2, 7)
    assert stores.events.count() == 2


def test_unclosed_quote_keeps_every_good_row_and_names_the_line_it_opened(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    """The shape that lost rows: 14 data rows, one quote never closed on line 6. The csv
    module ran that field on to line 9 (the next quote), swallowing two good rows."""
    path = write(
        tmp_path / "events.csv",
        "user_id,item_id,event_type,timestamp,value,context\n"
        "u1,i1,play,2024-05-01T10:00:00Z,30,\n"  # line 2: good
        "u2,i2,play,2024-05-01T10:00:00Z\n"  # line 3: too few fields
        "u3,i3,teleport,2024-05-01T10:00:00Z,,\n"  # line 4: unknown type
        ",i4,play,2024-05-01T10:00:00Z,,\n"  # line 5: missing user
        'u5,"i5,play,2024-05-01T10:00:00Z,,\n'  # line 6: the quote opens, never closes
        "u6,i6,play,2024-05-01T10:00:00Z,,\n"  # line 7: good
        "u7,i7,play,2024-05-01T10:00:00Z,,\n"  # line 8: good
        'u8,i8,rating,1714557600,4.5,"{""a"": 1}"\n'  # line 9: good, quoted context
        "u9,i9,like,not-a-time,,\n"  # line 10: bad timestamp
        "u10,i10,play,2024-05-01T10:00:00Z,,\n"  # line 11: good
        "u11,i11,play,2999-01-01T00:00:00Z,,\n"  # line 12: far future
        "u12,i12,play,2024-05-01T10:00:00Z,,\n"  # line 13: good
        "u13,i13,play,2024-05-01T10:00:00Z,,\n"  # line 14: good
        "u14,i14,play,1970-01-02T00:00:00Z,,\n",  # line 15: far past
    )
    source = run(path, stores, settings).sources[0]
    assert (source.rows_read, source.stored, source.rejected) == (14, 7, 7)
    assert [(r.row, r.reason) for r in source.rejections] == [
        (3, "malformed_row"),
        (4, "unknown_event_type"),
        (5, "missing_field"),
        (6, "unclosed_quote"),
        (10, "timestamp_invalid"),
        (12, "timestamp_in_future"),
        (15, "timestamp_too_old"),
    ]
    quote = source.rejections[3].message
    assert "opened on line 6" in quote and "lines 7-9 were read again" in quote
    stored = {e.user_id: e for e in stores.events.scan()}
    assert set(stored) == {"u1", "u6", "u7", "u8", "u10", "u12", "u13"}
    assert stored["u8"].context == {"a": 1}


def test_quote_open_at_the_end_of_the_file_and_stray_quotes(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    path = write(
        tmp_path / "events.csv",
        "user_id,item_id,timestamp\n"
        'u1,"i1"x,1714557600\n'  # line 2: text after a closing quote
        'u2,i2",1714557600\n'  # line 3: a quote inside an unquoted field is text
        "u3,i3,1714557600\n"  # line 4: good
        'u4,"i4,1714557600\n',  # line 5: opens a quote, the file ends
    )
    source = run(path, stores, settings).sources[0]
    assert [(r.row, r.reason) for r in source.rejections] == [
        (2, "malformed_row"),
        (3, "invalid_id"),
        (5, "unclosed_quote"),
    ]
    assert "bad quoting" in source.rejections[0].message
    assert "end of the file" in source.rejections[2].message
    assert {e.user_id for e in stores.events.scan()} == {"u3"}


def test_catalog_text_may_span_lines_but_a_broken_quote_does_not_swallow_items(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    items = write(
        tmp_path / "items.csv",
        "item_id,title,description\n"
        'i1,Song,"two lines,\nof text"\n'  # lines 2-3: one record with a line break
        'i2,"Broken,quiet\n'  # line 4: the quote never closes
        "i3,Other,plain\n"  # line 5
        'i4,Last,"says ""hi"""\n',  # line 6
    )
    report = run(items, stores, settings, kind="items").sources[0]
    assert [(r.row, r.reason) for r in report.rejections] == [(4, "unclosed_quote")]
    assert report.stored == 3
    first = stores.catalog.get_item("i1")
    assert first is not None and first.attributes == {"description": "two lines,\nof text"}
    last = stores.catalog.get_item("i4")
    assert last is not None and last.attributes == {"description": 'says "hi"'}


def test_jsonl_with_broken_lines(tmp_path: Path, stores: Stores, settings: Settings) -> None:
    lines = [
        {
            "user_id": 1,
            "item_id": 2,
            "event_type": "click",
            "timestamp": 1714557600,
            "context": {"page": "home"},
            "device_type": "mobile",
        },
        "{not json",
        [1, 2, 3],
        {
            "user_id": "u2",
            "item_id": "i2",
            "event_type": "view",
            "timestamp": "2024-05-01T10:00:00Z",
            "device_type": "fridge",
        },
        {
            "user_id": "u3",
            "item_id": "i3",
            "event_type": "view",
            "timestamp": "2024-05-01T10:00:00Z",
            "event_id": "client-key-1",
            "schema_version": 1,
        },
    ]
    path = write(
        tmp_path / "events.jsonl",
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n",
    )
    source = run(path, stores, settings).sources[0]
    assert [(r.row, r.reason) for r in source.rejections] == [
        (2, "malformed_row"),
        (3, "malformed_row"),
        (4, "invalid_device_type"),
    ]
    stored = {e.user_id: e for e in stores.events.scan()}
    assert set(stored) == {"1", "u3"}
    assert stored["1"].context == {"page": "home"} and stored["1"].device_type == "mobile"
    assert stored["u3"].event_id == "client-key-1" and stored["u3"].schema_version == 2


def test_a_jsonl_integer_with_too_many_digits_rejects_its_line(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    """Python's parser raised a ValueError without ``msg`` (the loader fell over on it)."""
    good = '{"user_id": "u1", "item_id": "i1", "event_type": "view"}'
    bad = '{"user_id": "u2", "item_id": "i2", "event_type": "view", "context": {"n": %s}}'
    path = write(tmp_path / "events.jsonl", f"{good}\n{bad % ('9' * 5_000)}\n")
    source = run(path, stores, settings).sources[0]
    assert [(r.row, r.reason) for r in source.rejections] == [(2, "invalid_number")]
    assert "context.n" in source.rejections[0].message
    assert "too many digits" in source.rejections[0].message
    assert [e.user_id for e in stores.events.scan()] == ["u1"]


def test_a_csv_context_is_read_as_a_body_s_json_is(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    """A context cell naming a key twice kept the last value, and one with an over-long
    integer was "not a JSON object"; each now rejects its row, named as over HTTP."""
    path = write(
        tmp_path / "events.csv",
        "user_id,item_id,event_type,timestamp,context\n"
        'u1,i1,play,1714557600,"{""n"": %s}"\n'
        'u2,i2,play,1714557601,"{""page"": ""a"", ""page"": ""b""}"\n'
        'u3,i3,play,1714557602,"{""page"": ""home""}"\n' % ("9" * 5_000),
    )
    source = run(path, stores, settings, kind="events").sources[0]
    assert [(r.row, r.reason) for r in source.rejections] == [
        (2, "invalid_number"),
        (3, "duplicate_key"),
    ]
    assert "context.n is an integer with too many digits" in source.rejections[0].message
    assert "context.page is given more than once" in source.rejections[1].message
    assert [(e.user_id, e.context) for e in stores.events.scan()] == [("u3", {"page": "home"})]


def test_undecodable_bytes_reject_one_line(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    path = tmp_path / "events.tsv"
    path.write_bytes(
        b"user_id\titem_id\ttimestamp\n"
        b"u1\ti1\t1714557600\n"
        b"u\xff\xfe\ti2\t1714557600\n"
        b"u3\ti3\t1714557600\n"
    )
    source = run(path, stores, settings, event_type="play").sources[0]
    assert [(r.row, r.reason) for r in source.rejections] == [(3, "malformed_row")]
    assert source.stored == 2
    assert {e.event_type for e in stores.events.scan()} == {"play"}


def test_interactions_file_with_aliases_weight_and_no_timestamp(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    path = write(tmp_path / "plays.csv", "userId,artistID,weight\n7,100,13\n7,101,2\n8,100,5\n")
    source = run(path, stores, settings, event_type="play").sources[0]
    assert source.stored == 3 and source.notes and "modification time" in source.notes[0]
    events = stores.events.scan()
    assert {(e.user_id, e.item_id, e.event_type, e.value) for e in events} == {
        ("7", "100", "play", 13.0),
        ("7", "101", "play", 2.0),
        ("8", "100", "play", 5.0),
    }
    moment = datetime(2020, 2, 2, tzinfo=UTC)
    other = write(tmp_path / "more.csv", "userId,artistID,weight\n9,100,1\n")
    run(other, stores, settings, event_type="play", default_timestamp=moment)
    (late,) = stores.events.scan(__import__("tastebud.stores").stores.EventQuery(user_ids=["9"]))
    assert late.timestamp == moment


def test_explicit_mapping_and_missing_columns(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    path = write(tmp_path / "orders.csv", "customer,sku,when,action\nc1,s1,1714557600,purchase\n")
    with pytest.raises(MappingError, match="user_id"):
        open_sources(path)
    mapping = parse_mapping(["user_id=customer,item_id=sku", "timestamp=when"])
    source = run(path, stores, settings, mapping=mapping).sources[0]
    assert source.stored == 1
    assert stores.events.scan()[0].event_type == "purchase"
    with pytest.raises(MappingError, match="no column 'nope'"):
        open_sources(path, mapping={"user_id": "nope"})
    with pytest.raises(MappingError, match="target=source"):
        parse_mapping(["user_id"])


def test_empty_and_header_only_files_are_named_as_such(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    """An empty file was refused as one with "no user_id or item_id column (columns: [])",
    and so was a header-only file whose header names them (the bad-input audit)."""
    for name, text in (("empty.csv", ""), ("blank.csv", "\n\n"), ("empty.tsv", "")):
        with pytest.raises(MappingError, match=f"^{name} is empty: not even a header row$"):
            open_sources(write(tmp_path / name, text))
    with pytest.raises(MappingError, match=r"^broken\.jsonl has no JSON object it can read on"):
        open_sources(write(tmp_path / "broken.jsonl", "{not json\n[1]\n"))
    header = write(tmp_path / "header.csv", "\ufeffuser_id,item_id,timestamp\r\n")
    source = run(header, stores, settings).sources[0]
    assert (source.rows_read, source.stored, source.rejections) == (0, 0, [])
    items = write(tmp_path / "items.csv", "item_id,title\n")
    assert run(items, stores, settings, kind="items").sources[0].stored == 0


def test_a_header_split_on_another_separator_says_so(tmp_path: Path) -> None:
    semicolons = write(tmp_path / "export.csv", "user_id;item_id;rating\nu1;i1;4\n")
    with pytest.raises(MappingError, match="its header holds ';', but csv is split on commas"):
        open_sources(semicolons)
    with pytest.raises(MappingError, match="its header holds tabs: pass --format tsv"):
        open_sources(write(tmp_path / "tabs.csv", "user_id\titem_id\nu1\ti1\n"))
    with pytest.raises(MappingError, match="its header holds commas: pass --format csv"):
        open_sources(write(tmp_path / "commas.tsv", "item_id,title\ni1,t\n"), kind="items")


def test_a_binary_column_with_bytes_that_are_not_utf8_rejects_those_rows_alone(
    tmp_path: Path, stores: Stores, settings: Settings
) -> None:
    """Parquet writers that leave strings unannotated store them as binary; one value that
    is not UTF-8 refused the whole file ("Invalid UTF8 payload", no file, row or column
    named) and lost the good rows with it (the bad-input audit)."""
    path = tmp_path / "binary.parquet"
    users = pa.array([b"u1", b"u\xff", b"u3"], pa.binary())
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "item_id": pa.array([b"i1", b"i2", b"i3"], pa.binary()),
                "event_type": ["view"] * 3,
                "timestamp": [1714557600, 1714557601, 1714557602],
            }
        ),
        path,
    )
    source = run(path, stores, settings).sources[0]
    assert source.stored == 2
    assert [(r.row, r.reason) for r in source.rejections] == [(2, "invalid_text")]
    assert "user_id is not valid UTF-8" in source.rejections[0].message
    assert {e.user_id for e in stores.events.scan()} == {"u1", "u3"}


def test_parquet_events(tmp_path: Path, stores: Stores, settings: Settings) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": ["a", "b", None],
                "item_id": ["x", "y", "z"],
                "event_type": ["purchase", "add_to_cart", "view"],
                "timestamp": pa.array([1714557600, 1714557601, 1714557602], pa.int64()),
                "value": [9.99, 5.0, None],
            }
        ),
        path,
    )
    source = run(path, stores, settings).sources[0]
    assert (source.stored, [(r.row, r.reason) for r in source.rejections]) == (
        2,
        [(3, "missing_field")],
    )


def test_items_and_users_files(tmp_path: Path, stores: Stores, settings: Settings) -> None:
    items = write(
        tmp_path / "items.csv",
        "item_id,title,artist,genres,created_at,bpm,attributes\n"
        'i1,Song,Band,rock|indie,2023-01-01T00:00:00Z,120,"{""mood"": ""happy""}"\n'
        "i2,Other,Band,jazz,,90,\n"
        'i3,Broken,Band,jazz,,90,"{not json"\n'
        "bad id,X,Y,jazz,,1,\n",
    )
    report = run(items, stores, settings, kind="items").sources[0]
    assert (report.stored, [(r.row, r.reason) for r in report.rejections]) == (
        2,
        [(4, "malformed_row"), (5, "invalid_id")],
    )
    song = stores.catalog.get_item("i1")
    assert song is not None and song.creator == "Band" and song.categories == ["rock", "indie"]
    assert song.attributes == {"mood": "happy", "bpm": 120}
    users = write(
        tmp_path / "users.jsonl",
        '{"user_id": "u1", "age": 30, "zip": "02139", "likes": ["jazz"], "score": 0.5}\n'
        '{"age": 3}\n',
    )
    user_report = run(users, stores, settings, kind="users").sources[0]
    assert user_report.stored == 1 and user_report.rejections[0].reason == "missing_field"
    assert stores.catalog.get_user("u1").attributes == {  # type: ignore[union-attr]
        "age": 30,
        "zip": "02139",
        "likes": ["jazz"],
        "score": 0.5,
    }


def test_movielens_1m_layout(tmp_path: Path, stores: Stores, settings: Settings) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    write(
        folder / "movies.dat",
        "1::Amélie (2001)::Comedy|Romance\n2::Heat (1995)::Action\n",
        "latin-1",
    )
    write(folder / "users.dat", "1::F::25::7::02139\n2::M::35::1::10001\n")
    write(
        folder / "ratings.dat",
        "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\nbroken\n",
    )
    report = run(folder, stores, settings)
    assert [(s.kind, s.stored, s.rejected) for s in report.sources] == [
        ("items", 2, 0),
        ("users", 2, 0),
        ("events", 3, 1),
    ]
    amelie = stores.catalog.get_item("1")
    assert amelie is not None and amelie.title == "Amélie (2001)"
    assert amelie.categories == ["Comedy", "Romance"] and amelie.created_at.year == 2001  # type: ignore[union-attr]
    assert stores.catalog.get_user("1").attributes["age"] == 25  # type: ignore[union-attr]
    assert {e.value for e in stores.events.scan()} == {5.0, 3.0, 4.0}


def test_lastfm_layout(tmp_path: Path, stores: Stores, settings: Settings) -> None:
    folder = tmp_path / "hetrec"
    folder.mkdir()
    write(
        folder / "artists.dat",
        "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a\t\n52\tMorcheeba\t\t\n",
    )
    write(
        folder / "tags.dat", "tagID\ttagValue\n1\tnew wave\n2\ttrip-hop\n3\tchillout\n", "latin-1"
    )
    write(
        folder / "user_taggedartists.dat",
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t51\t1\t1\t4\t2009\n3\t51\t1\t1\t4\t2009\n"
        "2\t52\t2\t1\t4\t2009\n2\t52\t3\t1\t4\t2009\n4\t52\t2\t1\t4\t2009\n",
    )
    write(
        folder / "user_artists.dat",
        "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t-1\n",
    )
    report = run(folder, stores, settings)
    assert [(s.kind, s.stored) for s in report.sources] == [("items", 2), ("events", 3)]
    assert any("release" in note for note in report.sources[1].notes)
    morcheeba = stores.catalog.get_item("52")
    assert morcheeba is not None and morcheeba.categories == ["trip-hop", "chillout"]
    assert morcheeba.creator == "Morcheeba"
    plays = {(e.user_id, e.item_id): e for e in stores.events.scan()}
    assert plays[("2", "51")].event_type == "play" and plays[("2", "51")].value == 13883.0
    assert plays[("2", "51")].timestamp == datetime(2011, 5, 1, tzinfo=UTC)


def test_unknown_folder_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a dataset folder"):
        open_sources(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_sources(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match="--format"):
        open_sources(write(tmp_path / "events.xlsx", "x"))


@pytest.mark.movielens
def test_movielens_100k_real_copy(movielens_dir: Path, stores: Stores, settings: Settings) -> None:
    report = run(movielens_dir / "ml-100k", stores, settings)
    assert [(s.kind, s.stored, s.rejected) for s in report.sources] == [
        ("items", 1682, 0),
        ("users", 943, 0),
        ("events", 100_000, 0),
    ]
    stats = stores.events.stats()
    assert (stats.users, stats.items, stats.by_type) == (943, 1682, {"rating": 100_000})
    toy_story = stores.catalog.get_item("1")
    assert toy_story is not None and toy_story.title == "Toy Story (1995)"
    assert set(toy_story.categories) == {"Animation", "Children's", "Comedy"}
    assert stores.catalog.get_user("1").attributes["occupation"] == "technician"  # type: ignore[union-attr]


@pytest.mark.movielens
def test_movielens_latest_small_real_copy(
    movielens_dir: Path, stores: Stores, settings: Settings
) -> None:
    report = run(movielens_dir / "ml-latest-small", stores, settings)
    assert [(s.kind, s.stored, s.rejected) for s in report.sources] == [
        ("items", 9742, 0),
        ("events", 100_836, 0),
    ]
    assert stores.events.stats().users == 610
    toy_story = stores.catalog.get_item("1")
    assert toy_story is not None and "pixar" in toy_story.attributes["tags"]
    assert toy_story.attributes["imdb_id"] == "0114709"


@pytest.fixture(params=["embedded", "postgres"])
def any_backend(request: pytest.FixtureRequest, home: Path) -> Iterator[tuple[Stores, Settings]]:
    url = None if request.param == "embedded" else request.getfixturevalue("postgres_url")
    settings = load_settings(home=home, database_url=url)
    with open_stores(settings) as opened:
        yield opened, settings


def test_text_no_store_can_keep_is_rejected_per_row_on_every_backend(
    tmp_path: Path, any_backend: tuple[Stores, Settings]
) -> None:
    """NUL (raw in CSV, escaped in JSON) and lone surrogates (JSON escapes): the row is
    rejected with ``invalid_text``, the others are stored (issue 16: PostgreSQL 500s)."""
    stores, settings = any_backend
    items = tmp_path / "items.csv"
    items.write_bytes(b"item_id,title,artist\ni1,Fine,Band\ni2,Nul\x00here,Band\ni3,Ok,B\x00nd\n")
    report = run(items, stores, settings, kind="items").sources[0]
    assert report.stored == 1
    assert [(r.row, r.reason) for r in report.rejections] == [
        (3, "invalid_text"),
        (4, "invalid_text"),
    ]
    users = write(
        tmp_path / "users.jsonl",
        '{"user_id": "u1", "city": "ok"}\n'
        '{"user_id": "u2", "city": "a\\u0000b"}\n'
        '{"user_id": "u3", "city": "a\\ud800b"}\n',
    )
    report = run(users, stores, settings, kind="users").sources[0]
    assert report.stored == 1
    assert {r.reason for r in report.rejections} == {"invalid_text"}
    events = write(
        tmp_path / "events.jsonl",
        '{"user_id": "u1", "item_id": "i1", "event_type": "play", "timestamp": 1714557600}\n'
        '{"user_id": "u1", "item_id": "i1", "event_type": "play", "timestamp": 1714557601,'
        ' "context": {"page": "a\\u0000b"}}\n'
        '{"user_id": "u1", "item_id": "i1", "event_type": "play", "timestamp": 1714557602,'
        ' "context": {"page": "a\\ud800b"}}\n'
        '{"user_id": "u1", "item_id": "i1", "event_type": "pl\\u0000ay",'
        ' "timestamp": 1714557603}\n',
    )
    report = run(events, stores, settings, kind="events").sources[0]
    assert report.stored == 1
    assert [r.reason for r in report.rejections] == ["invalid_text"] * 3
    assert stores.events.count() == 1


def test_numbers_no_store_can_keep_are_rejected_per_row_on_every_backend(
    tmp_path: Path, any_backend: tuple[Stores, Settings]
) -> None:
    """NaN, Infinity (which Python's JSON parser accepts) and 1e999 (read as infinity) in a
    JSON Lines file or a CSV context: the row is rejected with ``invalid_number`` naming the
    field, the others stored. Before, the embedded store kept them as null and PostgreSQL
    refused them with its own error (the bad-input audit)."""
    stores, settings = any_backend
    items = write(
        tmp_path / "items.jsonl",
        '{"item_id": "a", "price": 1e999}\n'
        '{"item_id": "b", "price": NaN}\n'
        '{"item_id": "c", "sizes": [1, -Infinity]}\n'
        '{"item_id": "d", "price": 3.5}\n',
    )
    report = run(items, stores, settings, kind="items").sources[0]
    assert report.stored == 1
    assert [(r.row, r.reason) for r in report.rejections] == [
        (1, "invalid_number"),
        (2, "invalid_number"),
        (3, "invalid_number"),
    ]
    assert "sizes[1]" in report.rejections[2].message
    twice = write(
        tmp_path / "twice.jsonl",
        '{"item_id": "e", "item_id": "f"}\n{"item_id": "g", "tags": {"a": 1, "a": 2}}\n'
        '{"item_id": "h"}\n',
    )
    report = run(twice, stores, settings, kind="items").sources[0]
    assert [(r.row, r.reason) for r in report.rejections] == [
        (1, "duplicate_key"),
        (2, "duplicate_key"),
    ]
    assert "tags.a is given more than once" in report.rejections[1].message
    assert stores.catalog.get_item("d") is not None and stores.catalog.get_item("a") is None
    events = write(
        tmp_path / "events.csv",
        "user_id,item_id,event_type,timestamp,context\n"
        'u1,i1,play,1714557600,"{""position"": 3}"\n'
        'u1,i2,play,1714557601,"{""position"": Infinity}"\n'
        'u1,i3,play,1714557602,"{""position"": 1e999}"\n',
    )
    report = run(events, stores, settings, kind="events").sources[0]
    assert report.stored == 1
    assert [(r.row, r.reason) for r in report.rejections] == [
        (3, "invalid_number"),
        (4, "invalid_number"),
    ]
    assert "context.position" in report.rejections[0].message
