"""Reading the published trending lists: what the HTTP route and the ranking pipeline call.

Serving never runs the detector; it reads the list the ``trending`` job published last, so a
failed or stale run leaves the previous list in place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tastebud.jobs.outputs import ALL, index_key, read_published
from tastebud.stores import OnlineStore

NAMESPACE = "trending"


@dataclass(frozen=True)
class TrendingList:
    category: str
    as_of: str | None
    computed_at: str | None
    items: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None  # why the list is empty (nothing rose; too little data)


class NothingPublished(LookupError):
    """No trending list has been published yet."""


def trending_items(online: OnlineStore, category: str | None = None, k: int = 20) -> TrendingList:
    """The top ``k`` trending items of ``category`` (None or ``"*"``: all items).

    A category without trending items gets an empty list; NothingPublished is raised only
    when the trending job has never published.
    """
    document = read_published(online, NAMESPACE, category)
    if document is None:
        index = online.get(index_key(NAMESPACE))
        if index is None:
            raise NothingPublished("no trending list has been published yet")
        header = json.loads(index)
        return TrendingList(
            category or ALL, header.get("as_of"), header.get("computed_at"), [], header.get("note")
        )
    return TrendingList(
        category=document.get("category", category or ALL),
        as_of=document.get("as_of"),
        computed_at=document.get("computed_at"),
        items=list(document.get("items", []))[:k],
        note=document.get("note"),
    )
