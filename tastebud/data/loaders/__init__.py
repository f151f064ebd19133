"""Loaders turn files into ``Source``s: batches of raw rows for events, items or users.

``open_sources(path)`` recognises a dataset folder (MovieLens 100K / 1M / latest-small, 20M,
25M; Last.fm HetRec 2K; a tastebud folder with events.parquet) or reads one file of events,
items or users (CSV, TSV, JSON Lines, Parquet) with a column mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from tastebud.data.formats import KINDS as KINDS
from tastebud.data.formats import Kind
from tastebud.data.loaders.columns import MappingError
from tastebud.data.loaders.datasets import dataset_sources
from tastebud.data.loaders.files import detect_format
from tastebud.data.loaders.sources import Source as Source
from tastebud.data.loaders.sources import file_catalog, file_events


def open_sources(
    path: Path,
    *,
    kind: Kind | None = None,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    event_type: str = "view",
    default_timestamp: datetime | None = None,
) -> list[Source]:
    """The sources in a dataset folder (catalog first) or in one file."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        if kind is not None or mapping:
            raise MappingError("--kind and --map apply to a single file, not a dataset folder")
        return dataset_sources(path)
    kind = kind or "events"
    fmt = fmt or detect_format(path)
    if kind == "events":
        return [
            file_events(
                path, fmt, mapping or {}, event_type=event_type, default_timestamp=default_timestamp
            )
        ]
    return [file_catalog(path, fmt, kind, mapping or {})]
