"""Job outputs: versioned tables in the artifact store, then a pointer in the online store.

A result is first written completely as a Parquet table under ``{prefix}/{as_of}.parquet``
(atomic on local disk), and only then published to the online store, all keys in one
``set_many``. A run that fails before publishing leaves the previous result serving; a run
over an older interval (a backfill) never replaces a newer published result.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.jobs.base import JobContext
from tastebud.observability import get_logger
from tastebud.schemas import Item
from tastebud.stores import ArtifactStore, CatalogStore, OnlineStore

log = get_logger("tastebud.jobs.outputs")
ALL = "*"


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


def index_key(namespace: str) -> str:
    return f"{namespace}:index"


def list_key(namespace: str, category: str | None) -> str:
    return f"{namespace}:{category or ALL}"


def read_published(
    online: OnlineStore, namespace: str, category: str | None = None
) -> dict[str, Any] | None:
    """The published document for a category (``None``/``"*"``: all items), or None."""
    raw = online.get(list_key(namespace, category))
    return None if raw is None else json.loads(raw)


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
    """Publish ``lists`` (category -> entries) as the current result; False when a newer
    result is already serving (the older one stays in the artifact store only). A serving
    placeholder (``refused`` in its header: an empty list saying why there is no result)
    never blocks a real result, whatever its time."""
    current = online.get(index_key(namespace))
    previous: dict[str, Any] = json.loads(current) if current else {}
    newer = previous.get("as_of") and datetime.fromisoformat(previous["as_of"]) > as_of
    if newer and not previous.get("refused"):
        log.info("newer result already published", namespace=namespace, serving=previous["as_of"])
        return False
    computed_at = datetime.now(UTC).isoformat()
    header = {
        "as_of": as_of.isoformat(),
        "computed_at": computed_at,
        "version": version,
        **(extra or {}),
    }
    values: dict[str, bytes] = {}
    categories = sorted(lists)
    for category in categories:
        document = {**header, "category": category, "items": lists[category]}
        values[list_key(namespace, category)] = _encode(document)
    # Categories that had a list before but have none now get an empty one, in the same write.
    for category in set(previous.get("categories", [])) - set(lists):
        values[list_key(namespace, category)] = _encode(
            {**header, "category": category, "items": []}
        )
    values[index_key(namespace)] = _encode({**header, "categories": categories})
    if context is not None:
        context.check()  # an abandoned (timed-out) attempt must not publish
    online.set_many(values)
    return True


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), default=str).encode()


def lookup_items(catalog: CatalogStore, item_ids: list[str], chunk: int = 1_000) -> dict[str, Item]:
    """Catalog entries of just these items (reading a whole big catalog costs seconds)."""
    found: dict[str, Item] = {}
    for offset in range(0, len(item_ids), chunk):
        found.update(catalog.get_items(item_ids[offset : offset + chunk]))
    return found


def catalog_table(catalog: CatalogStore) -> pa.Table:
    """item_id, categories, created_at, active for every catalog item (paged)."""
    ids: list[str] = []
    categories: list[list[str]] = []
    created: list[datetime | None] = []
    active: list[bool] = []
    for item in catalog.iter_items():
        ids.append(item.item_id)
        categories.append(list(item.categories))
        created.append(item.created_at)
        active.append(item.active)
    return pa.table(
        {
            "item_id": pa.array(ids, pa.string()),
            "categories": pa.array(categories, pa.list_(pa.string())),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "active": pa.array(active, pa.bool_()),
        }
    )
