"""The data a ranking request reads and returns: what the stages of
``tastebud.ranking.pipeline`` exchange with the service around them.

Source bits: each candidate carries the OR of the sources that proposed it (``CF``,
``CONTENT``, ``TRENDING``, ``POPULAR``, ``NEW``), named in a list by ``SOURCE_NAMES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

SOURCES = ("cf", "content", "trending", "popular", "new")
CF, CONTENT, TRENDING, POPULAR, NEW = (1 << i for i in range(5))
# The source names of every combination of source bits, looked up once per listed item.
SOURCE_NAMES = [
    tuple(name for i, name in enumerate(SOURCES) if bits & (1 << i))
    for bits in range(1 << len(SOURCES))
]


@dataclass(frozen=True)
class Activity:
    """One recent event of a user, as the gateway recorded it for real-time serving."""

    item_id: str
    event_type: str
    timestamp: float  # epoch seconds
    weight: float  # the event type's training weight; < 0 is negative feedback


@dataclass
class UserContext:
    """Everything a request read from the stores before ranking."""

    user_id: str | None
    recent: Sequence[Activity] = ()  # oldest first
    session_items: Sequence[str] = ()  # an anonymous session's recent item ids
    trending: Sequence[str] | None = None  # published trending ids, best first
    popular: Sequence[str] | None = None  # published popular ids, best first
    category_affinity: dict[str, float] = field(default_factory=dict)  # feature store
    degraded: list[str] = field(default_factory=list)  # why a part of the context is missing


@dataclass(frozen=True)
class RankRequest:
    k: int = 20
    category: str | None = None
    exclude: frozenset[str] = frozenset()
    explain: bool = True
    now: float | None = None  # epoch seconds; default: time.time()


@dataclass(frozen=True)
class RankedItem:
    item_id: str
    score: float
    sources: list[str]
    explanation: str | None
    title: str | None = None  # from the catalog, so a list reads without another lookup
    creator: str | None = None


@dataclass
class RankedList:
    items: list[RankedItem]
    model_version: str | None
    segment: str  # "warm", "cold" (few interactions) or "unknown" (none)
    blend_ratio: float  # the CF share of the blend weights
    diversity: float  # intra-list diversity of the list (mean 1 - cosine)
    recency_weight: float  # mean recency boost over the list
    candidates: int
    relaxed_caps: int
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Served:
    """A ranked list and how it was made."""

    ranked: RankedList
    degraded: list[str] = field(default_factory=list)
    precomputed: bool = False  # served from the `recommendations` job's stored list
    used_affinity: bool = False  # the cold-start prior used the user's category affinity
