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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tastebud.ranking.config import RankingSettings
from tastebud.ranking.pipeline import RankedItem, RankedList

PREFIX = "reco:"
FORMAT = 1


def precomputed_key(user_id: str) -> str:
    return f"{PREFIX}{user_id}"


def settings_fingerprint(ranking: RankingSettings, k: int) -> str:
    """Changes whenever a setting that shapes the list does (a config change or a new k)."""
    text = f"{k}|{ranking.model_dump_json()}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class PrecomputedList:
    """One user's stored list and what it was ranked under."""

    ranked: RankedList
    content_version: str | None
    fingerprint: str
    activity: str | None  # activity_marker at ranking time
    ranked_at: float  # epoch seconds

    def encode(self) -> bytes:
        ranked = self.ranked
        return json.dumps(
            {
                "format": FORMAT,
                "model_version": ranked.model_version,
                "content_version": self.content_version,
                "fingerprint": self.fingerprint,
                "activity": self.activity,
                "ranked_at": self.ranked_at,
                "segment": ranked.segment,
                "blend_ratio": ranked.blend_ratio,
                "diversity": ranked.diversity,
                "recency_weight": ranked.recency_weight,
                "candidates": ranked.candidates,
                "items": [
                    [item.item_id, item.score, item.sources, item.explanation]
                    for item in ranked.items
                ],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> PrecomputedList | None:
        """The stored list, or None for a value this version cannot read."""
        try:
            document: dict[str, Any] = json.loads(raw)
            if document.get("format") != FORMAT:
                return None
            items = [
                RankedItem(str(item_id), float(score), list(sources), explanation)
                for item_id, score, sources, explanation in document["items"]
            ]
            ranked = RankedList(
                items=items,
                model_version=document["model_version"],
                segment=document["segment"],
                blend_ratio=float(document["blend_ratio"]),
                diversity=float(document["diversity"]),
                recency_weight=float(document["recency_weight"]),
                candidates=int(document["candidates"]),
                relaxed_caps=0,
            )
            return cls(
                ranked=ranked,
                content_version=document["content_version"],
                fingerprint=str(document["fingerprint"]),
                activity=document["activity"],
                ranked_at=float(document["ranked_at"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
