"""Reading the published trending lists: what the HTTP route and the ranking pipeline call.

Serving never runs the detector; it reads the list the ``trending`` job published last
(through ``tastebud.stores.published``, not through ``jobs``), so a failed or stale run
leaves the previous list in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tastebud.stores import OnlineStore
from tastebud.stores.published import ALL, PublishedOutputs

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
    published = PublishedOutputs(online)
    document = published.read(NAMESPACE, category)
    if document is None:
        header = published.read_index(NAMESPACE)
        if header is None:
            raise NothingPublished("no trending list has been published yet")
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
