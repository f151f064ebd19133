"""What the drift and cold-start checks compare with: the production model's training data.

The reference is read from the event store, not kept beside the model: the last
``[quality] window_hours`` of the production version's training range (its manifest's
``time_range``), so it has the judged window's length and needs nothing stored at training
time, and the model's own id vocabularies (``users.parquet``, ``items.parquet`` of the
version, read alone and checked against its manifest) say who and what it knows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tastebud.config import Settings
from tastebud.quality.scan import Bounds, Scan, micros, scan
from tastebud.registry import RegistryError, open_registry

if TYPE_CHECKING:
    import pyarrow as pa

    from tastebud.registry import ModelVersion
    from tastebud.stores import Stores


class NoReference(Exception):
    """There is no training snapshot to compare with; the message says why."""


@dataclass(frozen=True)
class Reference:
    version: str
    start: datetime
    end: datetime
    scan: Scan
    users: pa.Array  # the ids the model knows
    items: pa.Array


def production_manifest(stores: Stores, settings: Settings) -> ModelVersion:
    """The production version's manifest, or ``NoReference`` saying why there is none."""
    try:
        return open_registry(settings, stores.artifacts).get("production")
    except RegistryError as error:
        raise NoReference(f"no production model to compare with ({error})") from None


def production_reference(stores: Stores, settings: Settings, manifest: ModelVersion) -> Reference:
    """The reference of the production version ``manifest``, or ``NoReference``."""
    import pyarrow.parquet as pq  # lazy: pyarrow waits for a check run (quality history)

    registry = open_registry(settings, stores.artifacts)
    version = manifest.model_version
    if manifest.time_range is None or manifest.time_range.end is None:
        raise NoReference(f"production version {version} records no training time range")
    end = manifest.time_range.end + timedelta(microseconds=1)  # the range's end is inclusive
    start = end - timedelta(hours=settings.quality.window_hours)
    if manifest.time_range.start is not None:
        start = max(start, manifest.time_range.start)
    first = micros(start)
    snapshot = scan(stores.events, Bounds(first, first, first, micros(end)))
    if snapshot.rows == 0:
        raise NoReference(
            f"production version {version}'s training window ({start.isoformat()} to "
            f"{end.isoformat()}) has no events in the store"
        )
    ids = {}
    for name in ("users", "items"):
        try:
            data = registry.read_file(version, f"{name}.parquet")
        except RegistryError as error:
            raise NoReference(f"production version {version}: {error}") from None
        ids[name] = pq.read_table(io.BytesIO(data)).column("id").combine_chunks()
    return Reference(version, start, end, snapshot, ids["users"], ids["items"])
