"""Published outputs: the lists jobs publish to the online store and serving reads.

Jobs (popularity, trending, ...) write through ``publish``; serving (ranking, the trending
route) reads through ``read`` and ``read_index``. Neither side knows the other: the key
layout and the JSON documents live here, under the store they are kept in.

Per namespace (``popularity``, ``trending``): one document per category under
``{namespace}:{category}`` (``*``: all items), each the shared header (``as_of``,
``computed_at``, ``version``, extras) plus ``category`` and ``items``; and an index under
``{namespace}:index`` (the header plus ``categories``). All keys of one result are written
in one ``set_many``, so a reader never sees half of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from tastebud.observability import get_logger
from tastebud.stores.base import OnlineStore

log = get_logger("tastebud.stores.published")
ALL = "*"


def index_key(namespace: str) -> str:
    return f"{namespace}:index"


def list_key(namespace: str, category: str | None) -> str:
    return f"{namespace}:{category or ALL}"


class PublishedOutputs:
    """Read and publish the current result of a namespace in an online store."""

    def __init__(self, online: OnlineStore) -> None:
        self.online = online

    def read(self, namespace: str, category: str | None = None) -> dict[str, Any] | None:
        """The published document for a category (``None``/``"*"``: all items), or None."""
        raw = self.online.get(list_key(namespace, category))
        return None if raw is None else json.loads(raw)

    def read_index(self, namespace: str) -> dict[str, Any] | None:
        """The namespace's index (header and categories), or None before any publish."""
        raw = self.online.get(index_key(namespace))
        return None if raw is None else json.loads(raw)

    def publish(
        self,
        namespace: str,
        lists: Mapping[str, list[dict[str, Any]]],
        *,
        as_of: datetime,
        version: str,
        extra: Mapping[str, Any] | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> bool:
        """Publish ``lists`` (category -> entries) as the current result; False when a newer
        result is already serving. A serving placeholder (``refused`` in its header: an empty
        list saying why there is no result) never blocks a real result, whatever its time.
        ``before_write`` runs just before the write and may raise to stop it (a job checks
        it was not abandoned)."""
        current = self.online.get(index_key(namespace))
        previous: dict[str, Any] = json.loads(current) if current else {}
        newer = previous.get("as_of") and datetime.fromisoformat(previous["as_of"]) > as_of
        if newer and not previous.get("refused"):
            log.info(
                "newer result already published", namespace=namespace, serving=previous["as_of"]
            )
            return False
        header = {
            "as_of": as_of.isoformat(),
            "computed_at": datetime.now(UTC).isoformat(),
            "version": version,
            **(extra or {}),
        }
        values: dict[str, bytes] = {}
        categories = sorted(lists)
        for category in categories:
            document = {**header, "category": category, "items": lists[category]}
            values[list_key(namespace, category)] = _encode(document)
        # Categories that had a list before but have none now get an empty one, in one write.
        for category in set(previous.get("categories", [])) - set(lists):
            values[list_key(namespace, category)] = _encode(
                {**header, "category": category, "items": []}
            )
        values[index_key(namespace)] = _encode({**header, "categories": categories})
        if before_write is not None:
            before_write()
        self.online.set_many(values)
        return True


def read_published(
    online: OnlineStore, namespace: str, category: str | None = None
) -> dict[str, Any] | None:
    """The published document for a category (``None``/``"*"``: all items), or None."""
    return PublishedOutputs(online).read(namespace, category)


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), default=str).encode()
