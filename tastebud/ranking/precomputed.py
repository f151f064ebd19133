"""Precomputed lists: each known user's default list, ranked ahead of time by the
``recommendations`` job and kept in the online store, so the common request is a lookup.

A stored list is served only while it is still what ranking would return now:
- the request has the default shape (``serving.precomputed_k`` items, no category, no
  exclusions, no ranking overrides);
- the server ranks with the same model version, embeddings version and ranking settings;
- the user's recent-activity list is unchanged since (``activity_marker``): any event the
  gateway accepts invalidates it, so real-time behaviour is the on-demand path's;
- it is younger than ``serving.precomputed_max_age_seconds`` (trending and recency move);
- every item in it is still active in the catalog.
Anything else is ranked on demand, exactly as without precomputation.

A stored value is a one-line JSON header (what the list was ranked under) and, after a
newline, the API's ``items`` array as the job encoded it: a hit reads the header only and
answers with the items' bytes as they are.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tastebud.ranking.pipeline import RankedItem, RankedList
from tastebud.ranking_config import RankingSettings

PREFIX = "reco:"
FORMAT = 3  # 3: items carry title and creator


def precomputed_key(user_id: str) -> str:
    return f"{PREFIX}{user_id}"


def settings_fingerprint(ranking: RankingSettings, k: int) -> str:
    """Changes whenever a setting that shapes the list does (a config change or a new k)."""
    text = f"{k}|{ranking.model_dump_json()}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def item_document(item: RankedItem, *, metadata: bool = True) -> dict[str, Any]:
    """One item of the API's ``items`` array (``metadata``: with its title and creator)."""
    document: dict[str, Any] = {
        "item_id": item.item_id,
        "score": item.score,
        "sources": item.sources,
        "explanation": item.explanation,
    }
    if metadata:
        document["title"] = item.title
        document["creator"] = item.creator
    return document


def encode_items(items: list[RankedItem]) -> bytes:
    """The API's ``items`` array, with metadata (``item_document``)."""
    return json.dumps([item_document(item) for item in items], separators=(",", ":")).encode()


@dataclass(frozen=True)
class PrecomputedList:
    """One user's stored list and what it was ranked under."""

    model_version: str | None
    content_version: str | None
    fingerprint: str
    activity: str | None  # activity_marker at ranking time
    ranked_at: float  # epoch seconds
    segment: str
    blend_ratio: float
    diversity: float
    recency_weight: float
    candidates: int
    item_ids: tuple[str, ...]
    items_json: bytes  # the API's items array (``encode_items``)

    @classmethod
    def of(
        cls,
        ranked: RankedList,
        *,
        content_version: str | None,
        fingerprint: str,
        activity: str | None,
        ranked_at: float,
    ) -> PrecomputedList:
        return cls(
            model_version=ranked.model_version,
            content_version=content_version,
            fingerprint=fingerprint,
            activity=activity,
            ranked_at=ranked_at,
            segment=ranked.segment,
            blend_ratio=ranked.blend_ratio,
            diversity=ranked.diversity,
            recency_weight=ranked.recency_weight,
            candidates=ranked.candidates,
            item_ids=tuple(item.item_id for item in ranked.items),
            items_json=encode_items(ranked.items),
        )

    def encode(self) -> bytes:
        header: dict[str, Any] = {
            "format": FORMAT,
            "model_version": self.model_version,
            "content_version": self.content_version,
            "fingerprint": self.fingerprint,
            "activity": self.activity,
            "ranked_at": self.ranked_at,
            "segment": self.segment,
            "blend_ratio": self.blend_ratio,
            "diversity": self.diversity,
            "recency_weight": self.recency_weight,
            "candidates": self.candidates,
            "item_ids": self.item_ids,
        }
        return json.dumps(header, separators=(",", ":")).encode() + b"\n" + self.items_json

    @classmethod
    def decode(cls, raw: bytes) -> PrecomputedList | None:
        """The stored list (its items left encoded), or None for a value this version
        cannot read."""
        head, _, items = raw.partition(b"\n")
        try:
            header: dict[str, Any] = json.loads(head)
            if header.get("format") != FORMAT or not (items[:1] == b"[" and items[-1:] == b"]"):
                return None
            return cls(
                model_version=header["model_version"],
                content_version=header["content_version"],
                fingerprint=str(header["fingerprint"]),
                activity=header["activity"],
                ranked_at=float(header["ranked_at"]),
                segment=str(header["segment"]),
                blend_ratio=float(header["blend_ratio"]),
                diversity=float(header["diversity"]),
                recency_weight=float(header["recency_weight"]),
                candidates=int(header["candidates"]),
                item_ids=tuple(str(item_id) for item_id in header["item_ids"]),
                items_json=items,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def ranked(self, *, explain: bool = True) -> RankedList:
        """The list as ranking returns it (items decoded)."""
        items = [
            RankedItem(
                item_id=str(entry["item_id"]),
                score=float(entry["score"]),
                sources=list(entry["sources"]),
                explanation=entry["explanation"] if explain else None,
                title=entry["title"],
                creator=entry["creator"],
            )
            for entry in json.loads(self.items_json)
        ]
        return RankedList(
            items=items,
            model_version=self.model_version,
            segment=self.segment,
            blend_ratio=self.blend_ratio,
            diversity=self.diversity,
            recency_weight=self.recency_weight,
            candidates=self.candidates,
            relaxed_caps=0,
        )
