"""Public dataset layouts: MovieLens (100K, 1M, latest-small / 20M / 25M), Last.fm HetRec 2K,
and tastebud's own folder layout (events / items / users files, as the generator writes)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tastebud.data.loaders.columns import EVENT_ALIASES, map_events, resolve_columns
from tastebud.data.loaders.files import RawBatch, count_lines, detect_format, read_delimited
from tastebud.data.loaders.sources import Source, file_catalog, file_events

# HetRec 2011 has no interaction times; its release date stands in (documented in the README).
LASTFM_TIMESTAMP = datetime(2011, 5, 1, tzinfo=UTC)
YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
NATIVE_SUFFIXES = (".parquet", ".jsonl", ".csv")
TOP_TAGS = 10


def dataset_sources(folder: Path) -> list[Source]:
    """Recognise a dataset folder by its files; catalog sources come before events."""
    if (folder / "u.data").is_file():
        return movielens_100k(folder)
    if (folder / "ratings.dat").is_file():
        return movielens_1m(folder)
    if (folder / "ratings.csv").is_file():
        return movielens_csv(folder)
    if (folder / "user_artists.dat").is_file():
        return lastfm_2k(folder)
    native = {kind: _native_file(folder, kind) for kind in ("items", "users", "events")}
    if native["events"] is not None:
        return [
            file_catalog(path, detect_format(path), kind, {})  # type: ignore[arg-type]
            if kind != "events"
            else file_events(
                path, detect_format(path), {}, event_type="view", default_timestamp=None
            )
            for kind, path in native.items()
            if path is not None
        ]
    raise ValueError(
        f"{folder} is not a dataset folder tastebud knows: expected MovieLens (u.data,"
        " ratings.dat or ratings.csv), Last.fm (user_artists.dat) or events.parquet/.jsonl/.csv"
    )


def _native_file(folder: Path, kind: str) -> Path | None:
    for suffix in NATIVE_SUFFIXES:
        path = folder / f"{kind}{suffix}"
        if path.is_file():
            return path
    return None


def _delimited_events(
    path: Path,
    separator: str,
    columns: list[str] | None,
    *,
    quoted: bool = False,
    event_type: str = "rating",
    default_timestamp: datetime | None = None,
    encoding: str = "utf-8",
) -> Source:
    def read(batch_size: int) -> Iterator[RawBatch]:
        for batch in read_delimited(
            path,
            separator=separator,
            columns=columns,
            quoted=quoted,
            batch_size=batch_size,
            encoding=encoding,
        ):
            resolved = resolve_columns(batch.table.column_names, EVENT_ALIASES, {})
            table = map_events(
                batch.table,
                resolved,
                default_event_type=event_type,
                default_timestamp=default_timestamp,
            )
            yield RawBatch(table, batch.row_numbers, batch.rejections)

    total = count_lines(path) - (0 if columns else 1)
    return Source("events", path, read, total)


def _delimited_catalog(
    kind: str,
    path: Path,
    separator: str,
    columns: list[str] | None,
    to_record: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    encoding: str = "utf-8",
    quoted: bool = False,
) -> Source:
    return Source(
        kind,  # type: ignore[arg-type]
        path,
        lambda batch_size: read_delimited(
            path,
            separator=separator,
            columns=columns,
            encoding=encoding,
            quoted=quoted,
            batch_size=batch_size,
        ),
        count_lines(path),
        to_record=to_record,
    )


def _year(title: str | None) -> str | None:
    match = YEAR_IN_TITLE.search(title or "")
    return f"{match.group(1)}-01-01T00:00:00Z" if match else None


def _demographics(row: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in row.items() if k != "user_id" and v is not None}
    if attributes.get("age", "").isdigit():
        attributes["age"] = int(attributes["age"])
    return {"user_id": row["user_id"], "attributes": attributes}


# --- MovieLens 100K ---------------------------------------------------------------------------


def movielens_100k(folder: Path) -> list[Source]:
    genres = (
        [
            line.split("|")[0]
            for line in (folder / "u.genre").read_text(encoding="latin-1").splitlines()
            if line.strip()
        ]
        if (folder / "u.genre").is_file()
        else []
    )
    flags = [f"genre_{index}" for index in range(len(genres) or 19)]
    item_columns = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *flags]

    def item(row: dict[str, Any]) -> dict[str, Any]:
        released = row.get("release_date")
        return {
            "item_id": row["item_id"],
            "title": row["title"],
            "categories": [
                name
                for name, flag in zip(genres, flags, strict=False)
                if row.get(flag) == "1" and name != "unknown"
            ],
            "created_at": datetime.strptime(released, "%d-%b-%Y").replace(tzinfo=UTC)
            if released
            else None,
            "attributes": {"imdb_url": row["imdb_url"]} if row.get("imdb_url") else {},
        }

    sources = [
        _delimited_catalog("items", folder / "u.item", "|", item_columns, item, encoding="latin-1")
    ]
    if (folder / "u.user").is_file():
        sources.append(
            _delimited_catalog(
                "users",
                folder / "u.user",
                "|",
                ["user_id", "age", "gender", "occupation", "zip_code"],
                _demographics,
            )
        )
    sources.append(
        _delimited_events(folder / "u.data", "\t", ["user_id", "item_id", "rating", "timestamp"])
    )
    return sources


# --- MovieLens 1M -----------------------------------------------------------------------------


def movielens_1m(folder: Path) -> list[Source]:
    def movie(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "item_id": row["item_id"],
            "title": row["title"],
            "categories": (row.get("genres") or "").split("|") if row.get("genres") else [],
            "created_at": _year(row["title"]),
        }

    sources = [
        _delimited_catalog(
            "items",
            folder / "movies.dat",
            "::",
            ["item_id", "title", "genres"],
            movie,
            encoding="latin-1",
        )
    ]
    if (folder / "users.dat").is_file():
        sources.append(
            _delimited_catalog(
                "users",
                folder / "users.dat",
                "::",
                ["user_id", "gender", "age", "occupation", "zip_code"],
                _demographics,
            )
        )
    sources.append(
        _delimited_events(
            folder / "ratings.dat", "::", ["user_id", "item_id", "rating", "timestamp"]
        )
    )
    return sources


# --- MovieLens latest-small / 20M / 25M -------------------------------------------------------


def _top_tags(
    path: Path,
    item_column: str,
    tag_of: Callable[[dict[str, Any]], str | None],
    *,
    separator: str,
    quoted: bool,
    encoding: str = "utf-8",
) -> dict[str, list[str]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for batch in read_delimited(path, separator=separator, quoted=quoted, encoding=encoding):
        for row in batch.table.to_pylist():
            tag = tag_of(row)
            if tag and row.get(item_column):
                counts[row[item_column]][tag.strip().lower()] += 1
    return {item: [tag for tag, _ in c.most_common(TOP_TAGS)] for item, c in counts.items()}


def movielens_csv(folder: Path) -> list[Source]:
    tags = (
        _top_tags(
            folder / "tags.csv", "movieId", lambda r: r.get("tag"), separator=",", quoted=True
        )
        if (folder / "tags.csv").is_file()
        else {}
    )
    links: dict[str, dict[str, str]] = {}
    if (folder / "links.csv").is_file():
        for batch in read_delimited(folder / "links.csv", separator=",", quoted=True):
            for row in batch.table.to_pylist():
                links[row["movieId"]] = {
                    k: v
                    for k, v in (("imdb_id", row.get("imdbId")), ("tmdb_id", row.get("tmdbId")))
                    if v
                }

    def movie(row: dict[str, Any]) -> dict[str, Any]:
        genres = row.get("genres") or ""
        attributes: dict[str, Any] = dict(links.get(row["movieId"], {}))
        if row["movieId"] in tags:
            attributes["tags"] = tags[row["movieId"]]
        return {
            "item_id": row["movieId"],
            "title": row.get("title"),
            "categories": [] if genres in ("", "(no genres listed)") else genres.split("|"),
            "created_at": _year(row.get("title")),
            "attributes": attributes,
        }

    return [
        _delimited_catalog("items", folder / "movies.csv", ",", None, movie, quoted=True),
        _delimited_events(folder / "ratings.csv", ",", None, quoted=True),
    ]


# --- Last.fm HetRec 2K ------------------------------------------------------------------------


def lastfm_2k(folder: Path) -> list[Source]:
    tag_names: dict[str, str] = {}
    if (folder / "tags.dat").is_file():
        for batch in read_delimited(folder / "tags.dat", separator="\t", encoding="latin-1"):
            tag_names.update(
                (row["tagID"], row["tagValue"])
                for row in batch.table.to_pylist()
                if row["tagValue"]
            )
    tags = (
        _top_tags(
            folder / "user_taggedartists.dat",
            "artistID",
            lambda r: tag_names.get(r["tagID"]),
            separator="\t",
            quoted=False,
        )
        if (folder / "user_taggedartists.dat").is_file()
        else {}
    )

    def artist(row: dict[str, Any]) -> dict[str, Any]:
        top = tags.get(row["id"], [])
        attributes: dict[str, Any] = {"url": row["url"]} if row.get("url") else {}
        if top:
            attributes["tags"] = top
        return {
            "item_id": row["id"],
            "title": row["name"],
            "creator": row["name"],
            "categories": top[:3],
            "attributes": attributes,
        }

    source = _delimited_events(
        folder / "user_artists.dat",
        "\t",
        None,
        event_type="play",
        default_timestamp=LASTFM_TIMESTAMP,
    )
    source.notes.append(
        f"Last.fm HetRec has no interaction times: plays are dated {LASTFM_TIMESTAMP.date()}"
        " (the dataset's release) and carry the play count as value"
    )
    sources = []
    if (folder / "artists.dat").is_file():
        sources.append(_delimited_catalog("items", folder / "artists.dat", "\t", None, artist))
    sources.append(source)
    return sources
