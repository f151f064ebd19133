"""Job outputs: versioned tables in the artifact store, then a pointer in the online store.

The online side (keys, documents, the newer-wins rule) belongs to the store:
``tastebud.stores.published``, which serving reads through; jobs publish through it here.

A result is first written completely as a Parquet table under ``{prefix}/{as_of}.parquet``
(atomic on local disk), and only then published to the online store, all keys in one
``set_many``. A run that fails before publishing leaves the previous result serving; a run
over an older interval (a backfill) never replaces a newer published result.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.jobs.base import JobContext
from tastebud.schemas import Item
from tastebud.stores import ArtifactStore, CatalogStore, OnlineStore
from tastebud.stores.published import (  # noqa: F401  (re-exported for the job definitions)
    ALL,
    PublishedOutputs,
    index_key,
    list_key,
    read_published,
)


def version_key(prefix: str, as_of: datetime) -> str:
    return f"{prefix}/{as_of.astimezone(UTC):%Y%m%dT%H%M%SZ}.parquet"


def write_version(artifacts: ArtifactStore, prefix: str, as_of: datetime, table: pa.Table) -> str:
    """Write one version of a result table; returns its artifact key."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    key = version_key(prefix, as_of)
    artifacts.put_bytes(key, buffer.getvalue())
    return key


def read_version(artifacts: ArtifactStore, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(artifacts.get_bytes(key)))


def prune_versions(artifacts: ArtifactStore, prefix: str, keep: int, protect: str) -> int:
    """Delete all but the newest ``keep`` versions (never ``protect``, the one serving)."""
    keys = [key for key in artifacts.list(prefix) if key.endswith(".parquet")]
    removed = 0
    for key in keys[: max(0, len(keys) - keep)]:
        if key != protect and artifacts.delete(key):
            removed += 1
    return removed


def publish_lists(
    context: JobContext | None,
    online: OnlineStore,
    namespace: str,
    lists: Mapping[str, list[dict[str, Any]]],
    *,
    as_of: datetime,
    version: str,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """Publish ``lists`` (category -> entries) through the store's published outputs
    (``tastebud.stores.published``); False when a newer result is already serving. An
    abandoned (timed-out) attempt raises before it writes."""
    return PublishedOutputs(online).publish(
        namespace,
        lists,
        as_of=as_of,
        version=version,
        extra=extra,
        before_write=context.check if context is not None else None,
    )


def lookup_items(catalog: CatalogStore, item_ids: list[str], chunk: int = 1_000) -> dict[str, Item]:
    """Catalog entries of just these items (reading a whole big catalog costs seconds)."""
    found: dict[str, Item] = {}
    for offset in range(0, len(item_ids), chunk):
        found.update(catalog.get_items(item_ids[offset : offset + chunk]))
    return found
